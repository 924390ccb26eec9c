"""Raw email parsers for the inbound webhook (JSON parsing lives in apps.core.rest)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.parsers import BaseParser

from apps.core.rest import read_capped


class RawEmailParser(BaseParser):
    """A raw RFC 822 email, as bytes, up to INBOUND_EMAIL_MAX_BYTES."""

    media_type = "message/rfc822"

    def parse(
        self, stream: Any, media_type: str | None = None, parser_context: dict | None = None
    ) -> bytes:
        return read_capped(stream, parser_context, settings.INBOUND_EMAIL_MAX_BYTES, "the email")


class PlainTextEmailParser(RawEmailParser):
    media_type = "text/plain"
