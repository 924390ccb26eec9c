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


@register.filter
def draft_context_summary(context: object) -> str:
    """A draft's conversation context in one line: which reading of a follow-up was kept,
    the turns it read (and dropped), the open questions it answers too, what was searched."""
    if not isinstance(context, dict) or not context.get("reading"):
        return ""
    readings = context.get("readings") or {}
    kept = context["reading"]
    parts = [
        "new subject: read alone"
        if context.get("new_subject")
        else f"read {'alone' if kept == 'message' else f'in context ({kept})'}"
    ]
    others = [
        f"{name} → {value.get('intent') or 'none'} {value.get('confidence', 0):.2f}"
        for name, value in readings.items()
    ]
    if others:
        parts.append("readings: " + ", ".join(others))
    if context.get("readings_agree") is False:
        parts.append("the readings disagree")
    parts.append(f"{context.get('turns', 0)} earlier turns in the prompt")
    if context.get("dropped_turns"):
        parts.append(f"{context['dropped_turns']} older dropped")
    if context.get("open_questions"):
        parts.append(f"answers {context['open_questions']} earlier open question(s) too")
    if context.get("quoted_chars_removed"):
        parts.append(f"{context['quoted_chars_removed']} quoted characters left out")
    if context.get("query"):
        parts.append(f"searched: “{context['query'][:160]}”")
    return " · ".join(parts)
