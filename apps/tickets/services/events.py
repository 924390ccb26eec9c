"""The tickets' events for outbound webhooks (apps.webhooks): what each one carries."""

from __future__ import annotations

from apps.tickets.models import Message, Ticket
from apps.webhooks.models import EventType
from apps.webhooks.services import webhook_event_emit


def ticket_json(ticket: Ticket) -> dict:
    return {
        "id": ticket.pk,
        "subject": ticket.subject,
        "channel": ticket.channel,
        "priority": ticket.priority,
        "status": ticket.status,
        "customer_id": ticket.customer_id,
        "assignee_id": ticket.assignee_id,
        "created_at": ticket.created_at.isoformat() if ticket.created_at else None,
    }


def ticket_created_emit(ticket: Ticket, message: Message) -> None:
    webhook_event_emit(
        event_type=EventType.TICKET_CREATED,
        data={"ticket": ticket_json(ticket), "message_id": message.pk},
        summary=f"Ticket #{ticket.pk} opened ({ticket.channel}): {ticket.subject}",
        ticket_id=ticket.pk,
    )


def message_created_emit(message: Message) -> None:
    webhook_event_emit(
        event_type=EventType.MESSAGE_CREATED,
        data={
            "message": {
                "id": message.pk,
                "ticket_id": message.ticket_id,
                "author_kind": message.author_kind,
                "channel": message.channel,
                "body": message.body,
                "created_at": message.created_at.isoformat(),
            }
        },
        summary=f"New {message.author_kind} message on ticket #{message.ticket_id}",
        ticket_id=message.ticket_id,
    )


def ticket_status_emit(ticket: Ticket, *, from_status: str, reason: str) -> None:
    """ticket.handed_off and ticket.resolved; other status changes are not events."""
    event = {
        "handed_off": EventType.TICKET_HANDED_OFF,
        "resolved": EventType.TICKET_RESOLVED,
    }.get(str(ticket.status))
    if event is None:
        return
    webhook_event_emit(
        event_type=event,
        data={"ticket": ticket_json(ticket), "from_status": from_status, "reason": reason},
        summary=f"Ticket #{ticket.pk} {ticket.status.replace('_', ' ')}: {reason}"[:500],
        ticket_id=ticket.pk,
    )
