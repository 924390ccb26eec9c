"""Agents in another tool send or reject drafts through the API; sent drafts become gold-set
candidates, accepted into a gold set in bulk, and erased with their customer."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.management import call_command

from apps.copilot.models import Draft, DraftStatus
from apps.copilot.services import pipeline_run
from apps.evaluation.candidates import (
    AGENT_ANSWERS,
    gold_candidates_accept,
    gold_candidates_collect,
)
from apps.evaluation.models import CandidateStatus, GoldCandidate, GoldItem
from apps.feedback.models import DraftAction, FlaggedReply
from apps.tickets.models import Message

pytestmark = pytest.mark.slow
QUESTION = "I forgot my password and the reset email never came"


@pytest.fixture
def pending(copilot_ready, api_key_client, settings):  # type: ignore[no-untyped-def]
    """A ticket posted through the API whose draft waits for an agent."""
    settings.COPILOT_AUTO_SEND_THRESHOLD = 1.0  # nothing goes out on its own
    client = api_key_client()
    posted = client.post(
        "/api/v1/tickets",
        {"customer": {"email": "kim@example.com"}, "body": QUESTION},
        format="json",
    )
    assert posted.status_code == 201
    ticket_id = posted.json()["id"]
    draft = pipeline_run(message_id=Message.objects.get(ticket_id=ticket_id).pk)
    assert draft is not None and draft.status == DraftStatus.PENDING
    return client, ticket_id, draft


def test_an_edited_draft_sent_through_the_api_becomes_a_gold_candidate(pending):
    client, ticket_id, draft = pending
    edited = "Hello Kim, use 'Forgot password' on the sign-in page; the link lasts an hour."
    # when: an agent in another helpdesk sends it, edited
    sent = client.post(
        f"/api/v1/tickets/{ticket_id}/draft/send",
        {"body": edited, "agent": "maria (zendesk)"},
        format="json",
    )
    # then: sent to the customer and recorded as an edit
    assert sent.status_code == 200, sent.content
    assert sent.json()["action"] == "edited" and sent.json()["status"] == "sent"
    assert Message.objects.get(pk=sent.json()["sent_message_id"]).body == edited
    assert DraftAction.objects.get(draft=draft).sent_body == edited
    # when: the collection runs (beat, every GOLD_CANDIDATES_INTERVAL seconds)
    assert settings.CELERY_BEAT_SCHEDULE["evaluation-candidates-collect"]["schedule"] <= 60
    assert gold_candidates_collect() == 1 and gold_candidates_collect() == 0
    # then: the question, the cited article and the reply actually sent
    candidate = GoldCandidate.objects.get()
    assert (candidate.question, candidate.reference_reply, candidate.edited) == (
        QUESTION,
        edited,
        True,
    )
    assert candidate.cited_article == (draft.citations[0]["external_id"] if draft.citations else "")
    # when: an admin accepts it
    assert gold_candidates_accept(candidates=[candidate]) == 1
    item = GoldItem.objects.get(gold_set__name=AGENT_ANSWERS)
    assert (item.question, item.reference_reply, item.source_ticket_id) == (
        QUESTION,
        edited,
        ticket_id,
    )
    assert GoldCandidate.objects.get().status == CandidateStatus.ACCEPTED
    # when: the customer is erased, the candidate and the gold item go with them
    call_command("customer_erase", "kim@example.com")
    assert not GoldCandidate.objects.exists() and not GoldItem.objects.exists()


def test_a_draft_rejected_through_the_api_is_flagged_and_cannot_be_sent_after(pending):
    client, ticket_id, draft = pending
    missing = client.post(f"/api/v1/tickets/{ticket_id}/draft/reject", {}, format="json")
    assert missing.status_code == 400 and "reason" in missing.json()["error"]["fields"]
    rejected = client.post(
        f"/api/v1/tickets/{ticket_id}/draft/reject",
        {"reason": "wrong article", "agent": "maria"},
        format="json",
    )
    assert rejected.status_code == 200 and rejected.json()["action"] == "rejected"
    assert Draft.objects.get(pk=draft.pk).status == DraftStatus.REJECTED
    assert "rejected by maria: wrong article" in FlaggedReply.objects.get(draft=draft).detail
    again = client.post(f"/api/v1/tickets/{ticket_id}/draft/send", {}, format="json")
    assert again.status_code == 409 and "rejected" in again.json()["error"]["message"]
    assert gold_candidates_collect() == 0


def test_sending_needs_the_write_scope_and_a_known_ticket(pending, api_key_client):
    _, ticket_id, _ = pending
    reader = api_key_client(scopes=("read",))
    assert (
        reader.post(f"/api/v1/tickets/{ticket_id}/draft/send", {}, format="json").status_code == 403
    )
    writer = api_key_client()
    assert writer.post("/api/v1/tickets/999999/draft/send", {}, format="json").status_code == 404
