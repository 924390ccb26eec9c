"""Tickets with real conversations, made through the tickets services."""

from __future__ import annotations

from apps.tickets.models import AuthorKind, Channel, Customer, Ticket, TicketStatus
from apps.tickets.services import (
    Actor,
    message_add,
    ticket_create,
    ticket_handoff,
    ticket_resolve,
    ticket_review_request,
)
from tests.tickets.factories import CustomerFactory


def conversation_create(
    *,
    body: str = "Where is my order?",
    channel: Channel = Channel.WIDGET,
    status: TicketStatus = TicketStatus.NEW,
    customer: Customer | None = None,
    subject: str = "",
    intent: str = "",
    intent_confidence: float | None = None,
) -> Ticket:
    customer = customer or CustomerFactory()
    ticket, _ = ticket_create(
        customer=customer,
        body=body,
        channel=channel,
        actor=Actor.for_customer(customer),
        subject=subject,
    )
    if status == TicketStatus.HANDED_OFF:
        ticket_handoff(ticket=ticket, actor=Actor.copilot(), reason="low confidence")
    elif status == TicketStatus.NEEDS_REVIEW:
        ticket_review_request(ticket=ticket, actor=Actor.copilot(), reason="review")
    elif status == TicketStatus.RESOLVED:
        ticket_resolve(ticket=ticket, actor=Actor.system())
    elif status == TicketStatus.AWAITING_CUSTOMER:
        message_add(
            ticket=ticket, author_kind=AuthorKind.AGENT, body="We are on it.", actor=Actor.system()
        )
    if intent or intent_confidence is not None:
        Ticket.objects.filter(pk=ticket.pk).update(
            intent=intent, intent_confidence=intent_confidence
        )
    ticket.refresh_from_db()
    return ticket
