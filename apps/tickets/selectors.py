"""Reads of tickets and messages for the API, the widget and the inbox."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count, Q, QuerySet

from apps.core.exceptions import NotFoundError
from apps.tickets.models import (
    AuthorKind,
    Message,
    PipelineStatus,
    Ticket,
    TicketEvent,
    TicketStatus,
)


def ticket_get(*, ticket_id: int) -> Ticket:
    ticket = Ticket.objects.select_related("customer").filter(pk=ticket_id).first()
    if ticket is None:
        raise NotFoundError(f"ticket {ticket_id} does not exist", field="ticket_id")
    return ticket


def ticket_list(
    *,
    status: str | None = None,
    channel: str | None = None,
    intent: str | None = None,
    updated_since: datetime | None = None,
) -> QuerySet[Ticket]:
    tickets = Ticket.objects.select_related("customer")
    if status:
        tickets = tickets.filter(status=status)
    if channel:
        tickets = tickets.filter(channel=channel)
    if intent:
        tickets = tickets.filter(intent=intent)
    if updated_since is not None:
        tickets = tickets.filter(updated_at__gte=updated_since)
    return tickets


def message_list(*, ticket: Ticket, after_id: int | None = None) -> QuerySet[Message]:
    messages = Message.objects.filter(ticket=ticket).order_by("id")
    if after_id is not None:
        messages = messages.filter(id__gt=after_id)
    return messages


def message_list_for_customer(*, ticket: Ticket, after_id: int | None = None) -> QuerySet[Message]:
    """What the customer may see of the conversation: no system messages, no internal notes."""
    return message_list(ticket=ticket, after_id=after_id).exclude(
        author_kind__in=(AuthorKind.SYSTEM, AuthorKind.NOTE)
    )


def message_get(*, message_id: int) -> Message | None:
    """One message with its ticket, or None when it is gone."""
    messages = Message.objects.select_related("ticket", "ticket__customer")
    return messages.filter(pk=message_id).first()


def ticket_lock(*, ticket_id: int) -> Ticket:
    """The ticket row, locked until the caller's transaction ends (call inside one)."""
    return Ticket.objects.select_for_update().select_related("customer").get(pk=ticket_id)


def customer_message_latest(*, ticket_id: int) -> Message | None:
    return (
        Message.objects.filter(ticket_id=ticket_id, author_kind=AuthorKind.CUSTOMER)
        .order_by("-id")
        .first()
    )


def first_customer_message(*, ticket_id: int) -> Message | None:
    return (
        Message.objects.filter(ticket_id=ticket_id, author_kind=AuthorKind.CUSTOMER)
        .order_by("id")
        .first()
    )


def conversation_before(*, message: Message, limit: int) -> tuple[list[Message], int]:
    """The newest `limit` customer-visible messages before `message` on its ticket, oldest
    first, and how many there are in all. Reads at most `limit` rows, whatever the ticket's
    length."""
    earlier = message_list_for_customer(ticket=message.ticket).filter(id__lt=message.pk)
    rows = list(earlier.order_by("-id")[:limit])
    count = len(rows) if len(rows) < limit else earlier.count()
    return rows[::-1], count


def reopened_at(*, ticket_ids: list[int]) -> dict[int, list[datetime]]:
    """When each of these tickets was reopened (resolved, then opened again), oldest first."""
    reopens: dict[int, list[datetime]] = {}
    for ticket_id, at in (
        TicketEvent.objects.filter(ticket_id__in=ticket_ids, from_status=TicketStatus.RESOLVED)
        .exclude(to_status=TicketStatus.RESOLVED)
        .order_by("at")
        .values_list("ticket_id", "at")
    ):
        reopens.setdefault(ticket_id, []).append(at)
    return reopens


def agent_replies_to(*, message_ids: list[int]) -> dict[int, Message]:
    """For each of these customer messages, the first reply an agent wrote after it on its
    ticket before the customer wrote again (messages with none are left out)."""
    asked = Message.objects.filter(pk__in=message_ids).values_list("pk", "ticket_id")
    by_ticket: dict[int, set[int]] = {}
    for message_id, ticket_id in asked:
        by_ticket.setdefault(ticket_id, set()).add(message_id)
    replies: dict[int, Message] = {}
    rows = Message.objects.filter(
        ticket_id__in=list(by_ticket), author_kind__in=(AuthorKind.CUSTOMER, AuthorKind.AGENT)
    ).order_by("ticket_id", "id")
    waiting: int | None = None
    ticket: int | None = None
    for message in rows.iterator(chunk_size=2000):
        if message.ticket_id != ticket:
            ticket, waiting = message.ticket_id, None
        if message.author_kind == AuthorKind.CUSTOMER:
            waiting = message.pk if message.pk in by_ticket[message.ticket_id] else None
        elif waiting is not None:
            replies[waiting], waiting = message, None
    return replies


def reopenings_since(*, since: datetime) -> list[tuple[int, datetime, datetime]]:
    """(ticket id, when it was resolved, when it was reopened) for every reopening since
    `since`: a ticket moved out of `resolved`, paired with the resolution before it."""
    reopened = list(
        TicketEvent.objects.filter(at__gte=since, from_status=TicketStatus.RESOLVED)
        .exclude(to_status=TicketStatus.RESOLVED)
        .values_list("ticket_id", "at")
    )
    pairs = []
    for ticket_id, at in reopened:
        resolved = (
            TicketEvent.objects.filter(
                ticket_id=ticket_id, to_status=TicketStatus.RESOLVED, at__lte=at
            )
            .order_by("-at")
            .values_list("at", flat=True)
            .first()
        )
        if resolved is not None:
            pairs.append((ticket_id, resolved, at))
    return pairs


def pipeline_outcomes(*, since: datetime) -> tuple[int, int]:
    """(failed, total) customer messages since `since` whose pipeline finished or failed."""
    finished = Message.objects.filter(
        created_at__gte=since,
        author_kind=AuthorKind.CUSTOMER,
        pipeline_status__in=[PipelineStatus.DONE, PipelineStatus.FAILED],
    )
    counts = finished.aggregate(
        failed=Count("id", filter=Q(pipeline_status=PipelineStatus.FAILED)), total=Count("id")
    )
    return counts["failed"], counts["total"]


def customer_messages_by_channel(*, start: datetime, end: datetime) -> dict[str, int]:
    rows = (
        Message.objects.filter(
            created_at__gte=start, created_at__lt=end, author_kind=AuthorKind.CUSTOMER
        )
        .values("channel")
        .annotate(n=Count("id"))
    )
    return {row["channel"]: row["n"] for row in rows}


def tickets_opened_and_resolved(*, start: datetime, end: datetime) -> tuple[int, int]:
    """(opened, resolved) tickets in [start, end) (resolved: still resolved now)."""
    opened = Ticket.objects.filter(created_at__gte=start, created_at__lt=end).count()
    resolved = Ticket.objects.filter(resolved_at__gte=start, resolved_at__lt=end).count()
    return opened, resolved
