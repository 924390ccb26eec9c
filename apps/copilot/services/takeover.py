"""An agent taking a ticket from the copilot, handing it back, and switching its drafts off."""

from __future__ import annotations

from django.db import transaction

from apps.accounts.models import User
from apps.copilot.models import AssistOff, Takeover
from apps.tickets.models import Ticket, TicketStatus
from apps.tickets.services import Actor, ticket_assign


@transaction.atomic
def ticket_takeover(*, ticket: Ticket, actor: User) -> Takeover:
    """The agent owns the ticket: the copilot sends nothing more on it on its own (it still
    drafts for the agent unless they switch drafts off). Idempotent; also assigns the ticket
    to the agent."""
    takeover, _ = Takeover.objects.get_or_create(ticket=ticket, defaults={"agent": actor})
    if ticket.status != TicketStatus.RESOLVED and ticket.assignee_id != actor.pk:
        ticket_assign(
            ticket=ticket, assignee=actor, actor=Actor.for_user(actor), reason="took over"
        )
    return takeover


@transaction.atomic
def ticket_handback(*, ticket: Ticket, actor: User) -> bool:
    """The copilot may answer the ticket on its own again (from its next customer message)."""
    deleted, _ = Takeover.objects.filter(ticket=ticket).delete()
    return deleted > 0


@transaction.atomic
def ticket_assist_set(*, ticket: Ticket, actor: User, enabled: bool) -> bool:
    """Switch the copilot's drafts for the ticket on or off (from its next customer message);
    returns whether anything changed. Idempotent."""
    if enabled:
        deleted, _ = AssistOff.objects.filter(ticket=ticket).delete()
        return deleted > 0
    _, created = AssistOff.objects.get_or_create(ticket=ticket, defaults={"agent": actor})
    return created
