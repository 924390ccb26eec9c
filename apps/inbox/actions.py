"""Agent actions that combine ticket services; called by the views inside a transaction."""

from __future__ import annotations

from apps.accounts.models import User
from apps.core.exceptions import InvalidTransitionError
from apps.tickets.email_outbound import email_reply_send
from apps.tickets.models import AuthorKind, Channel, Message, Ticket, TicketStatus
from apps.tickets.services import Actor, message_add, ticket_assign, ticket_handoff


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


def ticket_take_over(*, ticket: Ticket, user: User) -> Ticket:
    """The agent owns the conversation from now on: handed off (the copilot stays out of a
    handed-off ticket) and assigned to them. Taking over one's own handed-off ticket is a
    no-op; a resolved ticket must be reopened first."""
    if ticket.status == TicketStatus.RESOLVED:
        raise InvalidTransitionError(
            f"ticket #{ticket.pk} is resolved; reopen it before taking it over", field="status"
        )
    actor = Actor.for_user(user)
    if ticket.status != TicketStatus.HANDED_OFF:
        ticket = ticket_handoff(
            ticket=ticket, actor=actor, reason=f"taken over by {user.get_username()}"
        )
    if ticket.assignee_id != user.pk:
        ticket = ticket_assign(ticket=ticket, assignee=user, actor=actor, reason="took over")
    return ticket
