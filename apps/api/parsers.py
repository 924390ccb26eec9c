"""Request parsers with size caps and exact error messages (DRF's own are too lenient)."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import BaseParser


class RequestTooLargeError(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"
    default_detail = "the request body is too large"


def _read_capped(stream: Any, parser_context: dict | None, limit: int, what: str) -> bytes:
    request = (parser_context or {}).get("request")
    declared = request.META.get("CONTENT_LENGTH", "") if request is not None else ""
    if declared.isdigit() and int(declared) > limit:
        raise RequestTooLargeError(f"{what} is {int(declared)} bytes; the limit is {limit} bytes")
    raw = stream.read(limit + 1) if stream is not None else b""
    if len(raw) > limit:
        raise RequestTooLargeError(f"{what} is over the limit of {limit} bytes")
    return raw


def json_request_max_bytes() -> int:
    # Room for a body at the character cap written entirely as \\uXXXX escapes, plus the rest.
    return settings.MESSAGE_MAX_CHARS * 6 + 64 * 1024


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON value")


class StrictJSONParser(BaseParser):
    """UTF-8 JSON only, size-capped; every failure is a 400 saying what is wrong."""

    media_type = "application/json"

    def parse(
        self, stream: Any, media_type: str | None = None, parser_context: dict | None = None
    ) -> Any:
        raw = _read_capped(stream, parser_context, json_request_max_bytes(), "the request body")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ParseError(
                f"the request body is not UTF-8 text (invalid byte at position {error.start})"
            ) from None
        try:
            return json.loads(text, parse_constant=_refuse_constant)
        except RecursionError:
            raise ParseError("the request body is nested too deeply") from None
        except ValueError as error:
            raise ParseError(f"the request body is not valid JSON: {error}") from None


class RawEmailParser(BaseParser):
    """A raw RFC 822 email, as bytes, up to INBOUND_EMAIL_MAX_BYTES."""

    media_type = "message/rfc822"

    def parse(
        self, stream: Any, media_type: str | None = None, parser_context: dict | None = None
    ) -> bytes:
        return _read_capped(stream, parser_context, settings.INBOUND_EMAIL_MAX_BYTES, "the email")


class PlainTextEmailParser(RawEmailParser):
    media_type = "text/plain"
