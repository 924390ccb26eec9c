import pytest

from apps.accounts.services import user_create
from apps.core.exceptions import InvalidTransitionError, ValidationError
from apps.tickets.models import AuthorKind, Ticket, TicketEvent, TicketStatus
from apps.tickets.services import (
    Actor,
    customer_resolve,
    message_add,
    ticket_assign,
    ticket_create,
    ticket_handoff,
    ticket_reopen,
    ticket_resolve,
    ticket_review_request,
)
from tests.tickets.factories import TicketFactory

pytestmark = pytest.mark.django_db

AGENT = Actor.system()


def events(ticket: Ticket) -> list[tuple[str, str, str, str]]:
    return list(
        TicketEvent.objects.filter(ticket=ticket).values_list(
            "kind", "from_status", "to_status", "reason"
        )
    )


def test_ticket_create_opens_a_new_ticket_with_an_audited_creation():
    # given
    customer = customer_resolve(email="a@example.com")
    # when
    ticket, message = ticket_create(
        customer=customer, body="Where is my parcel?", channel="api", actor=AGENT
    )
    # then
    assert ticket.status == TicketStatus.NEW
    assert ticket.subject == "Where is my parcel?"
    assert message.author_kind == AuthorKind.CUSTOMER
    assert events(ticket) == [("created", "", "new", "opened through API")]


@pytest.mark.parametrize(
    ("start", "change", "end"),
    [
        ("new", "handoff", "handed_off"),
        ("awaiting_customer", "handoff", "handed_off"),
        ("needs_review", "handoff", "handed_off"),
        ("new", "review", "needs_review"),
        ("awaiting_customer", "review", "needs_review"),
        ("new", "resolve", "resolved"),
        ("needs_review", "resolve", "resolved"),
        ("handed_off", "resolve", "resolved"),
        ("awaiting_customer", "resolve", "resolved"),
        ("resolved", "reopen", "new"),
    ],
)
def test_allowed_transition_changes_status_and_is_audited(start, change, end):
    # given
    ticket = TicketFactory(status=start)
    actor = Actor("agent", "7")
    # when
    changed = _apply(change, ticket, actor)
    # then
    ticket.refresh_from_db()
    assert changed.status == ticket.status == end
    event = TicketEvent.objects.get(ticket=ticket)
    assert (event.kind, event.from_status, event.to_status) == ("status_changed", start, end)
    assert (event.actor_kind, event.actor_id, event.reason) == ("agent", "7", "because")
    assert (ticket.resolved_at is not None) == (end == "resolved")


@pytest.mark.parametrize(
    ("start", "change", "message"),
    [
        (
            "resolved",
            "resolve",
            "cannot resolve ticket #{id}: it is resolved; that is possible "
            "only from awaiting_customer, handed_off, needs_review, new",
        ),
        (
            "handed_off",
            "handoff",
            "cannot hand off ticket #{id}: it is handed_off; that is "
            "possible only from awaiting_customer, needs_review, new",
        ),
        (
            "resolved",
            "handoff",
            "cannot hand off ticket #{id}: it is resolved; that is possible "
            "only from awaiting_customer, needs_review, new",
        ),
        (
            "new",
            "reopen",
            "cannot reopen ticket #{id}: it is new; only a resolved ticket can be reopened",
        ),
        (
            "handed_off",
            "review",
            "cannot request a review of ticket #{id}: it is handed_off; "
            "that is possible only from awaiting_customer, new",
        ),
        (
            "awaiting_customer",
            "reopen",
            "cannot reopen ticket #{id}: it is awaiting_customer; "
            "only a resolved ticket can be reopened",
        ),
    ],
)
def test_refused_transition_raises_a_clear_error_and_changes_nothing(start, change, message):
    # given
    ticket = TicketFactory(status=start)
    # when
    with pytest.raises(InvalidTransitionError) as raised:
        _apply(change, ticket, AGENT)
    # then
    assert raised.value.message == message.format(id=ticket.pk)
    ticket.refresh_from_db()
    assert ticket.status == start
    assert not TicketEvent.objects.filter(ticket=ticket).exists()


def test_transition_from_a_stale_status_is_refused_by_compare_and_set():
    # given: two copies of one ticket; the first resolves it
    ticket = TicketFactory(status="new")
    stale = Ticket.objects.get(pk=ticket.pk)
    ticket_resolve(ticket=ticket, actor=AGENT, reason="done")
    # when: the second, still seeing `new`, hands it off
    with pytest.raises(InvalidTransitionError) as raised:
        ticket_handoff(ticket=stale, actor=AGENT, reason="low confidence")
    # then
    assert raised.value.message == (
        f"cannot hand off ticket #{ticket.pk}: its status changed from new to resolved "
        "meanwhile; reload it and try again"
    )
    assert Ticket.objects.get(pk=ticket.pk).status == "resolved"
    assert TicketEvent.objects.filter(ticket=ticket).count() == 1


def test_handoff_needs_a_reason():
    # given
    ticket = TicketFactory(status="new")
    # when / then
    with pytest.raises(ValidationError, match="a handoff needs a reason"):
        ticket_handoff(ticket=ticket, actor=AGENT, reason=" ")
    assert Ticket.objects.get(pk=ticket.pk).status == "new"


def test_customer_message_reopens_a_resolved_ticket():
    # given
    ticket = TicketFactory(status="resolved")
    # when
    message = message_add(ticket=ticket, author_kind="customer", body="It broke again", actor=AGENT)
    # then
    ticket.refresh_from_db()
    assert ticket.status == "new"
    assert ticket.resolved_at is None
    assert events(ticket) == [("status_changed", "resolved", "new", "the customer wrote again")]
    assert TicketEvent.objects.get(ticket=ticket).data == {"message_id": message.pk}


def test_customer_reply_brings_an_awaiting_ticket_back_to_new():
    # given
    ticket = TicketFactory(status="awaiting_customer")
    # when
    message_add(ticket=ticket, author_kind="customer", body="Thanks, but…", actor=AGENT)
    # then
    assert Ticket.objects.get(pk=ticket.pk).status == "new"


@pytest.mark.parametrize("status", ["handed_off", "needs_review", "new"])
def test_customer_message_leaves_other_statuses_alone(status):
    # given
    ticket = TicketFactory(status=status)
    # when
    message_add(ticket=ticket, author_kind="customer", body="hello?", actor=AGENT)
    # then
    assert Ticket.objects.get(pk=ticket.pk).status == status
    assert not TicketEvent.objects.filter(ticket=ticket).exists()


@pytest.mark.parametrize(
    ("status", "end"),
    [
        ("new", "awaiting_customer"),
        ("needs_review", "awaiting_customer"),
        ("handed_off", "handed_off"),
        ("awaiting_customer", "awaiting_customer"),
    ],
)
def test_agent_reply_moves_the_ticket_to_awaiting_customer_unless_a_human_owns_it(status, end):
    # given
    ticket = TicketFactory(status=status)
    # when
    message = message_add(ticket=ticket, author_kind="agent", body="Done.", actor=AGENT)
    # then
    assert Ticket.objects.get(pk=ticket.pk).status == end
    assert message.pipeline_status == "not_applicable"


def test_assign_records_the_old_and_new_assignee():
    # given
    agent = user_create(username="sam", password="pw-123456789")
    ticket = TicketFactory(status="new")
    # when
    ticket_assign(ticket=ticket, assignee=agent, actor=Actor.for_user(agent), reason="mine")
    # then
    ticket.refresh_from_db()
    assert ticket.assignee == agent
    event = TicketEvent.objects.get(ticket=ticket)
    assert (event.kind, event.from_status, event.to_status, event.reason) == (
        "assigned",
        "new",
        "new",
        "mine",
    )
    assert event.data == {"from_assignee_id": None, "to_assignee_id": agent.pk}


def test_assigning_a_resolved_ticket_is_refused():
    # given
    agent = user_create(username="sam", password="pw-123456789")
    ticket = TicketFactory(status="resolved")
    # when
    with pytest.raises(InvalidTransitionError, match="it is resolved; reopen it first"):
        ticket_assign(ticket=ticket, assignee=agent, actor=AGENT)
    # then
    assert Ticket.objects.get(pk=ticket.pk).assignee is None
    assert not TicketEvent.objects.exists()


def test_database_refuses_an_unknown_status():
    # given
    ticket = TicketFactory(status="new")
    # when / then
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Ticket.objects.filter(pk=ticket.pk).update(status="lost")


def _apply(change: str, ticket: Ticket, actor: Actor) -> Ticket:
    if change == "handoff":
        return ticket_handoff(ticket=ticket, actor=actor, reason="because")
    if change == "review":
        return ticket_review_request(ticket=ticket, actor=actor, reason="because")
    if change == "resolve":
        return ticket_resolve(ticket=ticket, actor=actor, reason="because")
    return ticket_reopen(ticket=ticket, actor=actor, reason="because")
