"""Agent actions on tickets; called by the views inside a transaction."""

from __future__ import annotations

from apps.accounts.models import User
from apps.tickets.email_outbound import email_reply_send
from apps.tickets.models import AuthorKind, Channel, Message, Ticket
from apps.tickets.services import Actor, message_add


def reply_send(*, ticket: Ticket, body: str, user: User) -> Message:
    """Send an agent's reply through the ticket's channel: by email for email tickets (the
    send and the stored message succeed or fail together), otherwise stored on the ticket,
    where the widget and API clients read it."""
    actor = Actor.for_user(user)
    if ticket.channel == Channel.EMAIL and ticket.customer.email:
        return email_reply_send(
            ticket=ticket, body=body, author_kind=AuthorKind.AGENT, actor=actor, author_user=user
        )
    return message_add(
        ticket=ticket, author_kind=AuthorKind.AGENT, body=body, actor=actor, author_user=user
    )


def note_add(*, ticket: Ticket, body: str, user: User) -> Message:
    """An internal note on the ticket: the team sees it, the customer never does (not in the
    widget, not by email, not in the copilot's prompt). It changes no status."""
    return message_add(
        ticket=ticket,
        author_kind=AuthorKind.NOTE,
        body=body,
        actor=Actor.for_user(user),
        author_user=user,
    )
