"""Posting a reply to the customer, by the copilot or an agent."""

from __future__ import annotations

from apps.accounts.models import User
from apps.tickets.email_outbound import email_reply_send
from apps.tickets.models import AuthorKind, Channel, Message, Ticket
from apps.tickets.services import Actor, message_add


def reply_post(
    *,
    ticket: Ticket,
    body: str,
    author_kind: AuthorKind,
    actor: Actor,
    author_user: User | None = None,
) -> Message:
    """Post a reply on the ticket; by email too when the conversation is by email."""
    if ticket.channel == Channel.EMAIL and ticket.customer.email:
        return email_reply_send(
            ticket=ticket, body=body, author_kind=author_kind, actor=actor, author_user=author_user
        )
    return message_add(
        ticket=ticket, author_kind=author_kind, body=body, actor=actor, author_user=author_user
    )
