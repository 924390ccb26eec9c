import re

import pytest

from apps.copilot.models import DraftStatus
from apps.copilot.services import draft_send
from apps.feedback.models import DraftAction, FlaggedReply, FlagReason
from apps.tickets.models import AuthorKind, Message, TicketStatus
from tests.feedback.factories import draft_create
from tests.inbox.factories import conversation_create
from tests.inbox.test_ticket_actions import seen, state

pytestmark = pytest.mark.django_db


@pytest.fixture
def reviewed_ticket():  # type: ignore[no-untyped-def]
    ticket = conversation_create(
        body="When do I get my refund?", status=TicketStatus.NEEDS_REVIEW, intent="refund_status"
    )
    return ticket, draft_create(ticket)


def agent_messages(ticket) -> list[str]:  # type: ignore[no-untyped-def]
    return list(
        Message.objects.filter(ticket=ticket, author_kind=AuthorKind.AGENT).values_list(
            "body", flat=True
        )
    )


def test_draft_panel_explains_the_draft(agent_client, reviewed_ticket):
    # given
    ticket, _ = reviewed_ticket
    # when
    page = agent_client.get(f"/inbox/tickets/{ticket.pk}/").content.decode()
    # then
    assert "Hi! Refunds reach your card within 5 working days." in page
    assert "Needs review" in page
    assert "reply confidence <strong>0.62</strong>" in page
    assert "sent on its own from 0.94" in page
    assert "Confidence below the auto-send threshold" in page
    assert "confidence 0.62 below the auto-send threshold 0.90" in page
    assert "When will I get my refund?" in page
    assert 'href="/inbox/knowledge/articles/1/?external_id=returns/refund-timing.md"' in page
    assert "Card refunds take up to 5 working days." in page
    assert "local/extractive via draft-fast" in page
    assert "812 in / 64 out · $0.00042" in page
    assert "retrieve 30 ms" in page
    assert 'data-shortcut="a"' in page and 'data-shortcut="r"' in page


def test_the_only_send_is_the_text_in_the_box_and_unchanged_it_counts_as_accepted(
    agent_client, agent, reviewed_ticket
):
    # given: the page offers one send, the form around the draft's text box
    ticket, draft = reviewed_ticket
    page = agent_client.get(f"/inbox/tickets/{ticket.pk}/").content.decode()
    assert page.count("/draft/send") == 1 and "/draft/accept" not in page
    assert agent_client.post(f"/inbox/tickets/{ticket.pk}/draft/accept").status_code == 404
    # when: the box is sent as it was
    response = agent_client.post(
        f"/inbox/tickets/{ticket.pk}/draft/send",
        {**seen(ticket), "draft_id": draft.pk, "body": draft.body.replace("\n", "\r\n")},
    )
    # then
    assert response.status_code == 302
    assert agent_messages(ticket) == [draft.body]
    action = DraftAction.objects.get()
    assert (action.kind, action.agent, action.edit_distance) == ("accepted", agent, 0)
    draft.refresh_from_db()
    assert draft.status == DraftStatus.SENT
    assert state(ticket)[0] == TicketStatus.AWAITING_CUSTOMER


def test_edit_then_send_keeps_the_edit_and_its_distance(agent_client, reviewed_ticket):
    # given
    ticket, draft = reviewed_ticket
    edited = draft.body.replace("5 working days", "3 working days")
    # when
    agent_client.post(
        f"/inbox/tickets/{ticket.pk}/draft/send",
        {**seen(ticket), "draft_id": draft.pk, "body": edited},
    )
    # then
    assert agent_messages(ticket) == [edited]
    action = DraftAction.objects.get()
    assert (action.kind, action.draft_body, action.sent_body) == ("edited", draft.body, edited)
    assert (action.edit_distance, action.edit_unit) == (1, "char")
    assert FlaggedReply.objects.count() == 0  # a light edit is not flagged


def test_heavily_edited_draft_is_flagged(agent_client, reviewed_ticket):
    # given
    ticket, draft = reviewed_ticket
    # when
    agent_client.post(
        f"/inbox/tickets/{ticket.pk}/draft/send",
        {**seen(ticket), "draft_id": draft.pk, "body": "Please call us on 0800 123 456."},
    )
    # then
    flagged = FlaggedReply.objects.get()
    assert (flagged.reason, flagged.draft_id, flagged.intent) == (
        FlagReason.HEAVILY_EDITED,
        draft.pk,
        "refund_status",
    )
    assert flagged.message.body == "Please call us on 0800 123 456."


def test_reject_needs_a_reason_then_sends_nothing_and_flags(agent_client, reviewed_ticket):
    # given
    ticket, draft = reviewed_ticket
    form = {**seen(ticket), "draft_id": draft.pk}
    # when
    refused = agent_client.post(f"/inbox/tickets/{ticket.pk}/draft/reject", form)
    rejected = agent_client.post(
        f"/inbox/tickets/{ticket.pk}/draft/reject", {**form, "reason": "Wrong article"}
    )
    # then
    assert refused.status_code == 422
    assert "Say why the draft is rejected" in refused.content.decode()
    assert rejected.status_code == 302
    assert agent_messages(ticket) == []
    draft.refresh_from_db()
    assert draft.status == DraftStatus.REJECTED
    assert DraftAction.objects.get().reject_reason == "Wrong article"
    assert FlaggedReply.objects.get().reason == FlagReason.DRAFT_REJECTED


def test_acting_on_a_draft_another_agent_sent_is_a_conflict(
    agent_client, other_agent, reviewed_ticket
):
    # given: bob sends the draft while ann still looks at the old page
    ticket, draft = reviewed_ticket
    loaded = seen(ticket)
    draft_send(draft=draft, actor=other_agent)
    before = state(ticket)
    # when
    response = agent_client.post(
        f"/inbox/tickets/{ticket.pk}/draft/send",
        {**loaded, "draft_id": draft.pk, "body": "my version"},
    )
    # then
    page = response.content.decode()
    assert response.status_code == 409
    assert f"Ticket #{ticket.pk} changed while you were looking at it" in page
    assert "Nothing was done" in page
    assert "\nmy version</textarea>" in page  # kept, in the reply box: the draft was sent
    assert state(ticket) == before
    assert DraftAction.objects.count() == 0


def test_draft_text_is_rendered_inert(agent_client):
    # given
    ticket = conversation_create(status=TicketStatus.NEEDS_REVIEW)
    draft_create(
        ticket,
        body='<script>alert(1)</script> [x](javascript:alert(1)) <img src=x onerror="alert(1)">',
        reason_detail="<b>bold</b>",
        citations=[
            {
                "article_id": 9,
                "external_id": '"><script>alert(2)</script>',
                "title": "<img src=y onerror=alert(3)>",
                "url": "javascript:alert(4)",
                "passage": "<svg onload=alert(5)>",
            }
        ],
    )
    # when
    page = agent_client.get(f"/inbox/tickets/{ticket.pk}/").content.decode()
    # then
    assert not re.search(r"<(script|img|svg)[^>]*alert", page)
    assert "javascript:alert" not in re.findall(r'href="([^"]*)"', page).__str__()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_draft_stream_relays_the_draft_being_written(agent_client):
    # given
    from apps.copilot.streaming import stream_publish

    ticket = conversation_create()
    for event in (
        {"type": "start", "message_id": 1},
        {"type": "delta", "text": "Hello <b>there</b>"},
        {"type": "final", "draft_id": 1, "decision": "needs_review", "reason": "x"},
    ):
        stream_publish(ticket_id=ticket.pk, event=event)
    # when
    response = agent_client.get(f"/inbox/tickets/{ticket.pk}/draft/stream")
    body = b"".join(response).decode()
    # then
    assert response["Content-Type"] == "text/event-stream"
    assert 'event: delta\ndata: {"type": "delta", "text": "Hello <b>there</b>"' in body
    assert "event: final" in body


def test_ticket_page_follows_a_draft_in_progress(agent_client):
    # given: the customer's message is still in the pipeline
    ticket = conversation_create()
    # when
    page = agent_client.get(f"/inbox/tickets/{ticket.pk}/").content.decode()
    # then
    assert re.search(
        rf'data-draft-stream="/inbox/tickets/{ticket.pk}/draft/stream\?after=\d+"', page
    )
    assert "The copilot is drafting a reply" in page
