"""Service levels: a first reply and a resolution within a target per priority.

Calendar time (no business hours: a support team that keeps hours sets its targets
accordingly). A reply counts as the first response whoever sent it: an auto-sent copilot
reply answers the customer as much as an agent's does. A reopened ticket gets a new
resolution target from the moment it reopened.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings

from apps.tickets.models import SlaTarget, Ticket, TicketStatus


@dataclass(frozen=True)
class SlaState:
    """What is due next on an open ticket, and by when."""

    label: str  # "first reply" or "resolution"
    due_at: datetime
    overdue: bool
    seconds_left: float  # negative when overdue


def sla_targets(priority: str) -> tuple[timedelta, timedelta]:
    """(first response, resolution) for the priority: the admin's row, else the setting."""
    row = SlaTarget.objects.filter(priority=priority).first()
    if row is not None:
        first, resolution = row.first_response_minutes, row.resolution_minutes
    else:
        first, resolution = settings.TICKET_SLA[priority]
    return timedelta(minutes=first), timedelta(minutes=resolution)


# The statuses in which the team owes the customer something: the clock runs. While a reply
# awaits the customer, or once resolved, it does not.
SLA_RUNNING = (TicketStatus.NEW, TicketStatus.NEEDS_REVIEW, TicketStatus.HANDED_OFF)


def sla_state(ticket: Ticket, *, now: datetime) -> SlaState | None:
    """The next due target of a ticket the team owes an answer (None when the clock does not
    run: awaiting the customer, resolved, or opened before SLAs existed)."""
    if ticket.status not in SLA_RUNNING:
        return None
    if ticket.first_responded_at is None and ticket.first_response_due_at is not None:
        label, due = "first reply", ticket.first_response_due_at
    elif ticket.resolution_due_at is not None:
        label, due = "resolution", ticket.resolution_due_at
    else:
        return None
    left = (due - now).total_seconds()
    return SlaState(label=label, due_at=due, overdue=left < 0, seconds_left=left)


def duration_words(seconds: float) -> str:
    """A short human duration: "35 m", "2 h 10 m", "3 d 4 h"."""
    minutes = int(abs(seconds) // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} m" if minutes else f"{hours} h"
    return f"{max(minutes, 1)} m"
