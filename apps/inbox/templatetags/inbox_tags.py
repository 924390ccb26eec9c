"""Template helpers for the inbox."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django import template
from django.utils import timezone

from apps.tickets.models import Channel, Message, Ticket
from apps.tickets.sla import duration_words, sla_state

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


# --- who the customer is -----------------------------------------------------------------


@register.filter
def customer_label(ticket: Ticket) -> str:
    """The ticket's customer in a few words: an anonymous widget visitor is a website visitor,
    anyone else is as `Customer.__str__` says (name, else email, else external id)."""
    customer = ticket.customer
    if ticket.channel == Channel.WIDGET and not (
        customer.name or customer.email or customer.external_id
    ):
        return f"Website visitor #{customer.pk}"
    return str(customer)


@dataclass(frozen=True)
class CustomerDisplay:
    """How the ticket page names its customer. `claim_note` says what an unsigned widget
    visitor claimed, marked unverified; `is_verified` when the website signed the visitor."""

    label: str
    email: str = ""
    is_verified: bool = False
    user_id: str = ""
    claim_note: str = ""


def _widget_start(conversation: Iterable[Message]) -> dict[str, Any]:
    # The widget metadata of the conversation's first message: how the visitor started it.
    for message in conversation:
        widget = (message.metadata or {}).get("widget")
        if isinstance(widget, dict):
            return widget
    return {}


@register.simple_tag
def customer_display(ticket: Ticket, conversation: Iterable[Message] = ()) -> CustomerDisplay:
    """Who the ticket's customer is, from the customer and the messages already loaded for the
    page (no query of its own beyond the customer)."""
    customer = ticket.customer
    label = customer_label(ticket)
    if ticket.channel != Channel.WIDGET:
        return CustomerDisplay(label=label, email=customer.email)
    start = _widget_start(conversation)
    identity = start.get("identity")
    if isinstance(identity, dict) and identity.get("verified") is True:
        return CustomerDisplay(
            label=label,
            email=customer.email,
            is_verified=True,
            user_id=customer.external_id or str(identity.get("user_id") or ""),
        )
    claimed_name = str(start.get("claimed_name") or "").strip()
    said = [str(start.get("claimed_email") or "").strip()]
    claimed_user_id = str(start.get("claimed_user_id") or "").strip()
    if claimed_user_id:
        said.append(f"user id {claimed_user_id}")
    said = [part for part in said if part]
    if claimed_name and not customer.name:
        label = claimed_name
    if said:
        claim_note = f"(says: {', '.join(said)} — unverified)"
    elif claimed_name:
        claim_note = "(unverified)"
    else:
        claim_note = ""
    return CustomerDisplay(label=label, email=customer.email, claim_note=claim_note)


@register.filter
def sla_due(ticket: Ticket) -> dict | None:
    """The ticket's next service-level target, for the queue and the ticket page: label,
    due time, overdue, and the time left (or late) in words."""
    state = sla_state(ticket, now=timezone.now())
    if state is None:
        return None
    return {
        "label": state.label,
        "due_at": state.due_at,
        "overdue": state.overdue,
        "words": duration_words(state.seconds_left),
    }
