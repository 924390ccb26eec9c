"""Template helpers for the inbox."""

from __future__ import annotations

from urllib.parse import urlsplit

from django import template

register = template.Library()


@register.filter
def http_url(value: object) -> str:
    """The value if it is an http(s) URL, else "": a `javascript:` or `data:` URL from an
    imported article or a draft never becomes a clickable link."""
    text = str(value or "").strip()
    try:
        scheme = urlsplit(text).scheme.lower()
    except ValueError:
        return ""
    return text if scheme in ("http", "https") else ""
