"""Strict DRF building blocks shared by the REST API and the widget endpoints.

DRF quietly accepts unknown fields, numbers where text is expected and any JSON its parser
can read; these refuse them with a 400 that names the field (or a 413 for size).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import BaseParser
from rest_framework.renderers import JSONRenderer

from apps.core.text import ascii_digits


class RequestTooLargeError(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"
    default_detail = "the request body is too large"


def read_capped(
    stream: Any, parser_context: Mapping[str, Any] | None, limit: int, what: str
) -> bytes:
    request = (parser_context or {}).get("request")
    declared = request.META.get("CONTENT_LENGTH", "") if request is not None else ""
    if ascii_digits(declared) and int(declared) > limit:
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
    """UTF-8 JSON only, size-capped; every failure is a 400 saying what is wrong.

    The cap is the view's `json_max_bytes()` when it has one (bulk endpoints take more than
    a message), else `json_request_max_bytes()`.
    """

    media_type = "application/json"

    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        view_limit = getattr((parser_context or {}).get("view"), "json_max_bytes", None)
        limit = view_limit() if callable(view_limit) else json_request_max_bytes()
        raw = read_capped(stream, parser_context, limit, "the request body")
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


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not declare, naming them and listing the allowed ones."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(str(name) for name in set(data) - set(self.fields))
            if unknown:
                allowed = ", ".join(sorted(self.fields))
                raise serializers.ValidationError(
                    {name: [f"unknown field; allowed fields are: {allowed}"] for name in unknown}
                )
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    """A string and nothing else: 42 or true is refused, not turned into "42" or "True"."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            raise serializers.ValidationError(f"must be a string, not {_json_type(data)}")
        return super().to_internal_value(data)


class StrictEmailField(serializers.EmailField):
    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            raise serializers.ValidationError(f"must be a string, not {_json_type(data)}")
        return super().to_internal_value(data)


class StrictChoiceField(serializers.ChoiceField):
    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            raise serializers.ValidationError(f"must be a string, not {_json_type(data)}")
        return super().to_internal_value(data)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


class EventStreamRenderer(JSONRenderer):
    """Lets a Server-Sent Events view accept `Accept: text/event-stream` (what EventSource
    and the widget send): the stream itself is a StreamingHttpResponse that bypasses
    renderers; an error before it starts (401, 404) is rendered as the usual JSON body."""

    media_type = "text/event-stream"
    format = "event-stream"
