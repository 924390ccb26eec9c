import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from apps.tickets.models import Channel, Ticket, TicketStatus
from tests.inbox.factories import conversation_create

pytestmark = pytest.mark.django_db


def ticket_ids(response) -> list[int]:  # type: ignore[no-untyped-def]
    return [
        int(value) for value in re.findall(r'data-ticket-id="(\d+)"', response.content.decode())
    ]


def test_anonymous_visitor_is_sent_to_the_inbox_login():
    # when
    response = Client().get("/inbox/")
    # then
    assert response.status_code == 302
    assert response["Location"] == "/inbox/login/?next=/inbox/"


def test_agent_signs_in_with_the_login_form(agent):
    # given
    client = Client()
    # when
    response = client.post(
        "/inbox/login/", {"username": "ann", "password": "pw-ann-123", "next": "/inbox/"}
    )
    # then
    assert response.status_code == 302
    assert response["Location"] == "/inbox/"
    assert client.get("/inbox/").status_code == 200


def test_wrong_password_shows_an_error_and_signs_nobody_in(agent):
    # given
    client = Client()
    # when
    response = client.post("/inbox/login/", {"username": "ann", "password": "nope"})
    # then
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert client.get("/inbox/").status_code == 302


def test_queue_lists_tickets_needing_a_human_first(agent_client):
    # given
    new = conversation_create(subject="new one")
    handed_off = conversation_create(subject="handed off", status=TicketStatus.HANDED_OFF)
    waiting = conversation_create(subject="waiting", status=TicketStatus.AWAITING_CUSTOMER)
    review = conversation_create(subject="review", status=TicketStatus.NEEDS_REVIEW)
    # when
    response = agent_client.get("/inbox/?view=open")
    # then
    ids = ticket_ids(response)
    assert set(ids[:2]) == {handed_off.pk, review.pk}
    assert ids[2:] == [new.pk, waiting.pk]


def test_queue_filters_by_status_channel_assignee_band_and_search(agent_client, agent):
    # given
    widget_low = conversation_create(
        channel=Channel.WIDGET, intent="refund", intent_confidence=0.3, subject="Refund please"
    )
    email_high = conversation_create(
        channel=Channel.EMAIL, intent="shipping", intent_confidence=0.95, subject="Parcel late"
    )
    Ticket.objects.filter(pk=email_high.pk).update(assignee=agent)
    # when / then
    assert ticket_ids(agent_client.get("/inbox/?channel=email")) == [email_high.pk]
    assert ticket_ids(agent_client.get("/inbox/?band=low")) == [widget_low.pk]
    assert ticket_ids(agent_client.get("/inbox/?band=high")) == [email_high.pk]
    assert ticket_ids(agent_client.get("/inbox/?assignee=me")) == [email_high.pk]
    assert ticket_ids(agent_client.get("/inbox/?assignee=none")) == [widget_low.pk]
    assert ticket_ids(agent_client.get("/inbox/?intent=refund")) == [widget_low.pk]
    assert ticket_ids(agent_client.get("/inbox/?q=parcel")) == [email_high.pk]
    assert ticket_ids(agent_client.get(f"/inbox/?q=%23{widget_low.pk}")) == [widget_low.pk]
    assert ticket_ids(agent_client.get("/inbox/?status=awaiting_customer")) == []


def test_counts_per_view_are_shown(agent_client, agent):
    # given
    conversation_create(status=TicketStatus.HANDED_OFF)
    mine = conversation_create()
    Ticket.objects.filter(pk=mine.pk).update(assignee=agent)
    conversation_create(status=TicketStatus.RESOLVED)
    # when
    page = agent_client.get("/inbox/").content.decode()
    # then
    counts = dict(re.findall(r'id="count-(\w+)">(\d+)<', page))
    assert counts == {
        "needs_human": "1",
        "mine": "1",
        "unassigned": "1",
        "open": "2",
        "resolved": "1",
        "all": "3",
    }


def test_invalid_filters_are_ignored_with_a_notice_not_an_error(agent_client):
    # given
    ticket = conversation_create()
    # when
    response = agent_client.get("/inbox/?status=bogus&view=nope&assignee=x1&page=abc")
    # then
    assert response.status_code == 200
    assert ticket_ids(response) == [ticket.pk]
    assert "Ignored invalid filters: view, status, assignee" in response.content.decode()


def test_digits_int_refuses_are_a_text_search_and_an_ignored_filter_not_an_error(agent_client):
    # given: a superscript digit, which str.isdigit() accepts and int() refuses
    ticket = conversation_create(subject="Order \u00b3 never came")
    # when
    search = agent_client.get("/inbox/?q=%23%C2%B3")
    filtered = agent_client.get("/inbox/?assignee=%C2%B3")
    # then
    assert search.status_code == filtered.status_code == 200
    assert ticket_ids(search) == []
    assert ticket_ids(agent_client.get("/inbox/?q=%C2%B3")) == [ticket.pk]
    assert "Ignored invalid filter: assignee" in filtered.content.decode()


def test_htmx_poll_returns_only_the_rows_and_fresh_counts(agent_client):
    # given
    ticket = conversation_create(status=TicketStatus.HANDED_OFF)
    # when
    response = agent_client.get("/inbox/?view=open&rows=1", HTTP_HX_REQUEST="true")
    # then
    body = response.content.decode()
    assert body.lstrip().startswith('<tbody id="queue-rows"')
    assert ticket_ids(response) == [ticket.pk]
    assert '<span class="count" id="count-needs_human" hx-swap-oob="true">1</span>' in body
    assert "<html" not in body


def test_queue_escapes_customer_text(agent_client):
    # given
    conversation_create(subject='<script>alert("x")</script><img src=x onerror=alert(1)>')
    # when
    body = agent_client.get("/inbox/").content.decode()
    # then
    assert "<script>alert" not in body
    assert "<img src=x" not in body
    assert (
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
        in body
    )


def test_login_without_next_lands_on_the_queue(agent):
    # when
    response = Client().post("/inbox/login/", {"username": "ann", "password": "pw-ann-123"})
    # then
    assert response.status_code == 302
    assert response["Location"] == "/inbox/"


def test_the_queue_shows_what_is_due_and_puts_overdue_tickets_first(agent_client):
    # given: a fresh ticket, and an older one whose first reply is overdue by 35 minutes
    conversation_create(subject="Fresh one")
    late = conversation_create(subject="Late one")
    Ticket.objects.filter(pk=late.pk).update(
        first_response_due_at=timezone.now() - timedelta(minutes=35)
    )
    # when
    page = agent_client.get("/inbox/?view=all").content.decode()
    # then
    assert page.index("Late one") < page.index("Fresh one")
    assert "first reply overdue 35 m" in page
    assert "first reply in 7 h 59 m" in page or "first reply in 8 h" in page
    ticket_page = agent_client.get(f"/inbox/tickets/{late.pk}/").content.decode()
    assert "First reply overdue by 35 m" in ticket_page


def test_my_day_shows_what_the_copilot_did_on_my_tickets_today(agent_client, agent, other_agent):
    # given: on my ticket, an auto-sent draft and one I edited; on a colleague's, one more
    from apps.copilot.models import Decision, DraftStatus
    from apps.feedback.drafts import draft_send_recorded
    from apps.tickets.services import Actor, ticket_assign
    from tests.feedback.factories import draft_create

    mine = conversation_create(subject="My ticket")
    ticket_assign(ticket=mine, assignee=agent, actor=Actor.system())
    draft_create(
        mine, decision=Decision.AUTO_SENT, status=DraftStatus.AUTO_SENT, reason="",
        confidence=0.97, is_current=False,
    )  # fmt: skip
    pending = draft_create(mine, generation=2)
    draft_send_recorded(draft=pending, user=agent, body=pending.body + " Thanks, Ann")
    theirs = conversation_create(subject="Their ticket")
    ticket_assign(ticket=theirs, assignee=other_agent, actor=Actor.system())
    draft_create(theirs)
    # when
    page = agent_client.get("/inbox/me/").content.decode()
    # then
    figures = dict(re.findall(r"<dt>([^<]+)</dt><dd>(\d+)", page))
    assert figures["Sent by the copilot on its own"] == "1"
    assert figures["Drafts you edited, then sent"] == "1"
    assert figures["Drafts you sent as written"] == "0"
    assert "My ticket" in page and "Their ticket" not in page
