"""Raw email parsers for the inbound webhook (JSON parsing lives in apps.core.rest)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from rest_framework.parsers import BaseParser

from apps.core.rest import read_capped


class RawEmailParser(BaseParser):
    """A raw RFC 822 email, as bytes, up to INBOUND_EMAIL_MAX_BYTES."""

    media_type = "message/rfc822"

    # DRF lets a parser return any `request.data` (here the raw bytes); the stubs allow only
    # a mapping.
    def parse(  # type: ignore[override]
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        return read_capped(stream, parser_context, settings.INBOUND_EMAIL_MAX_BYTES, "the email")


class PlainTextEmailParser(RawEmailParser):
    media_type = "text/plain"
