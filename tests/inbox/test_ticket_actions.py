import re

import pytest
from django.core import mail
from django.test import Client

from apps.copilot.selectors import ticket_is_taken_over
from apps.inbox.forms import ticket_version
from apps.tickets.models import AuthorKind, Channel, Message, Ticket, TicketEvent, TicketStatus
from apps.tickets.services import Actor, message_add, ticket_assign
from tests.inbox.factories import conversation_create
from tests.tickets.test_email_channel import refusing_mail_server

pytestmark = pytest.mark.django_db


def seen(ticket: Ticket) -> dict[str, object]:
    """The hidden fields a form carries: the ticket as the agent saw it."""
    ticket.refresh_from_db()
    last = Message.objects.filter(ticket=ticket).order_by("-id").values_list("id", flat=True)
    last_message_id = last.first() or 0
    return {
        "version": ticket_version(ticket, last_message_id),
        "seen_status": ticket.status,
        "seen_message_id": last_message_id,
    }


def state(ticket: Ticket) -> tuple[str, int | None, int, int]:
    ticket.refresh_from_db()
    return (
        ticket.status,
        ticket.assignee_id,
        Message.objects.filter(ticket=ticket).count(),
        TicketEvent.objects.filter(ticket=ticket).count(),
    )


def test_ticket_page_shows_conversation_customer_and_previous_tickets(agent_client):
    # given
    earlier = conversation_create(subject="Old question")
    ticket = conversation_create(customer=earlier.customer, body="Second question")
    # when
    response = agent_client.get(f"/inbox/tickets/{ticket.pk}/")
    # then
    page = response.content.decode()
    assert response.status_code == 200
    assert "Second question" in page
    assert earlier.customer.email in page
    assert f'href="/inbox/tickets/{earlier.pk}/"' in page
    assert f'name="version" value="{seen(ticket)["version"]}"' in page


def test_unknown_ticket_is_404(agent_client):
    assert agent_client.get("/inbox/tickets/999999/").status_code == 404


def test_agent_reply_on_a_widget_ticket_is_stored_for_the_customer(agent_client, agent):
    # given
    ticket = conversation_create(channel=Channel.WIDGET)
    # when
    response = agent_client.post(
        f"/inbox/tickets/{ticket.pk}/reply", {**seen(ticket), "body": "It ships today."}
    )
    # then
    assert response.status_code == 302
    assert response["Location"] == f"/inbox/tickets/{ticket.pk}/"
    reply = Message.objects.filter(ticket=ticket).last()
    assert (reply.author_kind, reply.author_user, reply.body) == ("agent", agent, "It ships today.")
    assert state(ticket)[0] == TicketStatus.AWAITING_CUSTOMER
    assert "Reply sent." in agent_client.get(response["Location"]).content.decode()


def test_agent_reply_on_an_email_ticket_is_emailed(
    agent_client, django_capture_on_commit_callbacks
):
    # given
    ticket = conversation_create(channel=Channel.EMAIL)
    # when
    with django_capture_on_commit_callbacks(execute=True):
        agent_client.post(f"/inbox/tickets/{ticket.pk}/reply", {**seen(ticket), "body": "Hello!"})
    # then
    assert [(m.to, m.body) for m in mail.outbox] == [([ticket.customer.email], "Hello!")]
    assert Message.objects.filter(ticket=ticket, author_kind="agent").count() == 1


def test_an_email_reply_the_mail_server_refused_is_kept_and_shown_as_not_delivered(
    agent_client, settings, django_capture_on_commit_callbacks
):
    # given: a mail server that refuses connections
    refusing_mail_server(settings)
    ticket = conversation_create(channel=Channel.EMAIL)
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = agent_client.post(
            f"/inbox/tickets/{ticket.pk}/reply", {**seen(ticket), "body": "Hello!"}
        )
    # then: the reply is stored, and the agent sees it is not delivered yet
    assert response.status_code == 302
    assert Message.objects.filter(ticket=ticket, author_kind="agent").count() == 1
    page = agent_client.get(f"/inbox/tickets/{ticket.pk}/").content.decode()
    assert "Email not delivered yet (try 1:" in page


@pytest.mark.parametrize("channel", [Channel.WIDGET, Channel.EMAIL])
def test_an_internal_note_stays_with_the_team(agent_client, agent, channel):
    # given: a ticket whose customer writes from the widget or by email
    from apps.tickets.selectors import conversation_before, message_list_for_customer

    ticket = conversation_create(channel=channel)
    status_before = state(ticket)[0]
    # when: an agent saves a note instead of replying
    response = agent_client.post(
        f"/inbox/tickets/{ticket.pk}/reply",
        {**seen(ticket), "body": "VIP: refund without asking for the receipt.", "as_note": "1"},
    )
    # then: stored as a note, shown to agents, nothing sent, the status as it was
    assert response.status_code == 302
    note = Message.objects.filter(ticket=ticket).last()
    assert (note.author_kind, note.author_user) == (AuthorKind.NOTE, agent)
    assert state(ticket)[0] == status_before
    assert mail.outbox == []
    page = agent_client.get(response["Location"]).content.decode()
    assert "Internal note saved: the customer does not see it." in page
    assert "VIP: refund without asking for the receipt." in page
    # and: never in what the customer reads, nor in the copilot's view of the conversation
    assert note not in message_list_for_customer(ticket=ticket)
    follow_up = message_add(
        ticket=ticket, author_kind=AuthorKind.CUSTOMER, body="any news?",
        actor=Actor.for_customer(ticket.customer),
    )  # fmt: skip
    earlier, count = conversation_before(message=follow_up, limit=20)
    assert note not in earlier and count == len(earlier)


def test_empty_reply_is_refused_next_to_the_field_and_stores_nothing(agent_client):
    # given
    ticket = conversation_create()
    before = state(ticket)
    # when
    response = agent_client.post(
        f"/inbox/tickets/{ticket.pk}/reply", {**seen(ticket), "body": "  "}
    )
    # then
    assert response.status_code == 422
    assert '<p class="field-error" role="alert">Write a reply before sending.</p>' in (
        response.content.decode()
    )
    assert state(ticket) == before


def test_reply_on_a_ticket_changed_meanwhile_is_a_conflict_that_keeps_the_text(agent_client):
    # given: the agent loaded the page, then the customer wrote again
    ticket = conversation_create()
    loaded = seen(ticket)
    message_add(
        ticket=ticket,
        author_kind=AuthorKind.CUSTOMER,
        body="Hello??",
        actor=Actor.for_customer(ticket.customer),
    )
    before = state(ticket)
    # when
    response = agent_client.post(
        f"/inbox/tickets/{ticket.pk}/reply", {**loaded, "body": "My careful answer"}
    )
    # then
    page = response.content.decode()
    assert response.status_code == 409
    assert f"Ticket #{ticket.pk} changed while you were looking at it: 1 new message." in page
    assert "Nothing was done" in page
    assert "\nMy careful answer</textarea>" in page
    assert "Hello??" in page
    assert state(ticket) == before
    # and the refreshed form now carries the new version: sending again is deliberate
    assert f'name="version" value="{seen(ticket)["version"]}"' in page


def test_assign_after_another_agent_assigned_is_a_conflict(agent_client, agent, other_agent):
    # given
    ticket = conversation_create()
    loaded = seen(ticket)
    ticket_assign(ticket=ticket, assignee=other_agent, actor=Actor.for_user(other_agent))
    before = state(ticket)
    # when
    response = agent_client.post(f"/inbox/tickets/{ticket.pk}/assign-me", loaded)
    # then
    assert response.status_code == 409
    assert "it was updated (now assigned to bob)" in response.content.decode()
    assert state(ticket) == before


def test_resolve_then_reopen(agent_client):
    # given
    ticket = conversation_create(status=TicketStatus.HANDED_OFF)
    # when
    resolved = agent_client.post(f"/inbox/tickets/{ticket.pk}/resolve", seen(ticket))
    status_after_resolve = state(ticket)[0]
    reopened = agent_client.post(f"/inbox/tickets/{ticket.pk}/reopen", seen(ticket))
    # then
    assert (resolved.status_code, reopened.status_code) == (302, 302)
    assert status_after_resolve == TicketStatus.RESOLVED
    assert state(ticket)[0] == TicketStatus.NEW


def test_reopen_of_an_open_ticket_says_why_and_changes_nothing(agent_client):
    # given
    ticket = conversation_create()
    before = state(ticket)
    # when
    response = agent_client.post(f"/inbox/tickets/{ticket.pk}/reopen", seen(ticket))
    # then
    assert response.status_code == 409
    assert "only a resolved ticket can be reopened" in response.content.decode()
    assert state(ticket) == before


def test_take_over_stops_the_copilot_and_assigns_the_agent_until_handed_back(agent_client, agent):
    # given
    ticket = conversation_create(status=TicketStatus.NEEDS_REVIEW)
    # when
    taken = agent_client.post(f"/inbox/tickets/{ticket.pk}/take-over", seen(ticket))
    page = agent_client.get(f"/inbox/tickets/{ticket.pk}/").content.decode()
    taken_over = ticket_is_taken_over(ticket_id=ticket.pk)
    handed_back = agent_client.post(f"/inbox/tickets/{ticket.pk}/hand-back", seen(ticket))
    # then
    assert (taken.status_code, handed_back.status_code) == (302, 302)
    assert taken_over is True
    assert "Taken over: the copilot stays out" in page
    assert "Hand back to the copilot" in page
    assert state(ticket)[:2] == (TicketStatus.NEEDS_REVIEW, agent.pk)
    assert ticket_is_taken_over(ticket_id=ticket.pk) is False


def test_assign_to_another_agent_with_the_select(agent_client, other_agent):
    # given
    ticket = conversation_create()
    # when
    agent_client.post(
        f"/inbox/tickets/{ticket.pk}/assign", {**seen(ticket), "assignee": other_agent.pk}
    )
    # then
    assert state(ticket)[1] == other_agent.pk


def test_actions_need_a_signed_in_user_and_csrf(agent, db):
    # given
    ticket = conversation_create()
    before = state(ticket)
    anonymous = Client()
    csrf_checked = Client(enforce_csrf_checks=True)
    csrf_checked.force_login(agent)
    # when
    anonymous_response = anonymous.post(f"/inbox/tickets/{ticket.pk}/resolve", seen(ticket))
    no_token_response = csrf_checked.post(f"/inbox/tickets/{ticket.pk}/resolve", seen(ticket))
    # then
    assert anonymous_response.status_code == 302
    assert anonymous_response["Location"].startswith("/inbox/login/")
    assert no_token_response.status_code == 403
    assert state(ticket) == before


def test_forged_hidden_fields_are_refused_without_a_500(agent_client):
    # given
    ticket = conversation_create()
    before = state(ticket)
    # when
    response = agent_client.post(
        f"/inbox/tickets/{ticket.pk}/resolve",
        {"version": "x" * 40, "seen_status": "bogus", "seen_message_id": "-1"},
    )
    # then
    assert response.status_code == 422
    assert state(ticket) == before


@pytest.mark.parametrize(
    "payload",
    [
        "<script>window.pwned=1</script>",
        '<img src=x onerror="window.pwned=1">',
        "[click me](javascript:alert(1))",
        '<a href="javascript:alert(1)">x</a>',
        "**bold** <iframe src=//evil></iframe>",
    ],
)
def test_ticket_page_renders_customer_text_inert(agent_client, payload):
    # given
    ticket = conversation_create(body=payload, subject=payload)
    # when
    page = agent_client.get(f"/inbox/tickets/{ticket.pk}/").content.decode()
    # then
    assert payload not in page if "<" in payload else True
    assert not re.search(r"<(script|img|iframe)[^>]*(pwned|evil)", page)
    assert 'href="javascript:' not in page


def test_changes_poll_reports_what_changed(agent_client, other_agent):
    # given
    ticket = conversation_create()
    loaded = seen(ticket)
    unchanged = agent_client.get(f"/inbox/tickets/{ticket.pk}/changes", loaded)
    ticket_assign(ticket=ticket, assignee=other_agent, actor=Actor.for_user(other_agent))
    # when
    changed = agent_client.get(f"/inbox/tickets/{ticket.pk}/changes", loaded)
    # then
    assert unchanged.content.decode().strip() == ""
    assert "it was updated (now assigned to bob)" in changed.content.decode()


def test_triage_recorded_meanwhile_is_not_a_conflict(agent_client):
    # given: the copilot stores the triage result while the agent reads the ticket
    from apps.tickets.services import ticket_triage_record

    ticket = conversation_create()
    loaded = seen(ticket)
    ticket_triage_record(ticket=ticket, intent="shipping", intent_confidence=0.9, language="en")
    # when
    response = agent_client.post(f"/inbox/tickets/{ticket.pk}/reply", {**loaded, "body": "Hi"})
    # then
    assert response.status_code == 302
    assert Message.objects.filter(ticket=ticket, author_kind="agent").count() == 1
