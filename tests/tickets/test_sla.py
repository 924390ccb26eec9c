"""Service levels: targets per priority, the first reply, reopening, the queue's order."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.tickets.models import AuthorKind, SlaTarget, Ticket, TicketPriority, TicketStatus
from apps.tickets.services import Actor, message_add, ticket_resolve
from apps.tickets.sla import duration_words, sla_state

pytestmark = pytest.mark.django_db


def _open(priority: str = TicketPriority.NORMAL) -> Ticket:
    from apps.tickets.services import customer_resolve, ticket_create

    customer = customer_resolve(email="sla@example.com", name="Sla")
    ticket, _ = ticket_create(
        customer=customer, body="help", channel="api", actor=Actor.system(), priority=priority
    )
    return ticket


def test_a_new_ticket_is_due_a_first_reply_and_a_resolution_by_its_priority(settings):
    # given: the settings' targets, and the admin's for urgent tickets
    settings.TICKET_SLA = {**settings.TICKET_SLA, "normal": (480, 2880)}
    SlaTarget.objects.create(priority="urgent", first_response_minutes=15, resolution_minutes=60)
    # when
    normal, urgent = _open(), _open(TicketPriority.URGENT)
    # then
    assert normal.first_response_due_at - normal.created_at == pytest.approx(
        timedelta(minutes=480), abs=timedelta(seconds=1)
    )
    assert normal.resolution_due_at - normal.created_at == pytest.approx(
        timedelta(minutes=2880), abs=timedelta(seconds=1)
    )
    assert urgent.first_response_due_at - urgent.created_at == pytest.approx(
        timedelta(minutes=15), abs=timedelta(seconds=1)
    )


def test_the_first_reply_meets_the_first_target_then_the_resolution_is_due():
    # given
    ticket = _open()
    assert sla_state(ticket, now=timezone.now()).label == "first reply"
    # when: the copilot answers, then an agent
    message_add(ticket=ticket, author_kind=AuthorKind.COPILOT, body="hi", actor=Actor.copilot())
    ticket.refresh_from_db()
    first = ticket.first_responded_at
    message_add(ticket=ticket, author_kind=AuthorKind.AGENT, body="more", actor=Actor.system())
    ticket.refresh_from_db()
    # then: the first reply's time is kept; the clock pauses while awaiting the customer
    assert first is not None and ticket.first_responded_at == first
    assert ticket.status == TicketStatus.AWAITING_CUSTOMER
    assert sla_state(ticket, now=timezone.now()) is None
    # when the customer writes again, the resolution is what is due
    message_add(ticket=ticket, author_kind=AuthorKind.CUSTOMER, body="?", actor=Actor.system())
    ticket.refresh_from_db()
    assert sla_state(ticket, now=timezone.now()).label == "resolution"


def test_a_note_is_not_a_first_reply():
    ticket = _open()
    message_add(ticket=ticket, author_kind=AuthorKind.NOTE, body="looking", actor=Actor.system())
    ticket.refresh_from_db()
    assert ticket.first_responded_at is None


def test_a_reopened_ticket_gets_a_new_resolution_target():
    # given: a resolved ticket whose resolution was due long ago
    ticket = _open()
    Ticket.objects.filter(pk=ticket.pk).update(resolution_due_at=timezone.now() - timedelta(days=3))
    ticket.refresh_from_db()
    ticket_resolve(ticket=ticket, actor=Actor.system())
    # when: the customer writes again
    message_add(ticket=ticket, author_kind=AuthorKind.CUSTOMER, body="again", actor=Actor.system())
    # then
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.NEW
    assert ticket.resolution_due_at > timezone.now() + timedelta(hours=47)


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(59, "1 m"), (35 * 60, "35 m"), (2 * 3600, "2 h"), (2 * 3600 + 600, "2 h 10 m"),
     (3 * 86400 + 4 * 3600, "3 d 4 h"), (-35 * 60, "35 m")],
)  # fmt: skip
def test_durations_read_short(seconds, words):
    assert duration_words(seconds) == words
