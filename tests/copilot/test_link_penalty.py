"""A customer's complaint (a thumbs-down, a low CSAT, a ticket reopened soon after it was
resolved) lowers the intent→article link the reply stood on, until it is reviewed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.copilot.models import DraftStatus, LinkPenalty
from apps.copilot.selectors import intents_article_weights
from apps.copilot.services import pipeline_run
from apps.feedback.drafts import draft_send_recorded, flagged_drafts_collect
from apps.feedback.models import FlaggedReply, FlagReason
from apps.feedback.services import csat_record, flagged_reply_review, reply_rate
from apps.tickets.models import AuthorKind, Message, Ticket, TicketEvent
from apps.tickets.services import Actor, message_add, ticket_resolve
from tests.copilot.conftest import customer_ticket

pytestmark = pytest.mark.slow
QUESTION = "I forgot my password and the reset email never came"


def _sent_reply(agent):  # type: ignore[no-untyped-def]
    _, message = customer_ticket(QUESTION)
    draft = pipeline_run(message_id=message.pk)
    if draft.status == DraftStatus.PENDING:
        draft_send_recorded(draft=draft, user=agent)
    draft.refresh_from_db()
    return draft, Message.objects.get(pk=draft.sent_message_id)


def _weight(draft) -> float:  # type: ignore[no-untyped-def]
    article_id = draft.citations[0]["article_id"]
    return intents_article_weights(intents=[draft.intent])[draft.intent][article_id]


def test_a_thumbs_down_lowers_the_pair_until_an_admin_reviews_it(
    copilot_ready, django_user_model, settings
):
    # given: a reply the customer received, citing the article linked to its intent
    settings.COPILOT_SEMANTIC_CACHE_SIMILARITY = 1.1  # every draft composed afresh
    agent = django_user_model.objects.create_user("agent", password="pw-penalty-1")
    draft, sent = _sent_reply(agent)
    before = _weight(draft)
    assert before > 0
    # when: the customer gives it a thumbs-down
    reply_rate(message=sent, value="down")
    # then: the pair counts for half, in retrieval and in the next draft's confidence
    assert _weight(draft) == pytest.approx(before * settings.LINK_PENALTY_FACTOR)
    _, again = customer_ticket(QUESTION)
    second = pipeline_run(message_id=again.pk)
    assert (
        second.confidence_features["intent_article_match"]
        < draft.confidence_features["intent_article_match"]
    )
    # when: an admin reviews the flag, the pair is whole again
    flagged = FlaggedReply.objects.get(message=sent, reason=FlagReason.THUMBS_DOWN)
    flagged_reply_review(flagged=flagged, user=agent)
    assert _weight(draft) == pytest.approx(before) and not LinkPenalty.objects.exists()


def test_a_thumbs_down_taken_back_withdraws_the_penalty(copilot_ready, django_user_model):
    agent = django_user_model.objects.create_user("agent", password="pw-penalty-2")
    draft, sent = _sent_reply(agent)
    before = _weight(draft)
    reply_rate(message=sent, value="down")
    assert LinkPenalty.objects.count() == 1
    reply_rate(message=sent, value="up")
    assert not LinkPenalty.objects.exists() and _weight(draft) == pytest.approx(before)


def test_a_low_csat_lowers_the_pair_and_a_better_score_withdraws_it(
    copilot_ready, django_user_model, settings
):
    agent = django_user_model.objects.create_user("agent", password="pw-penalty-3")
    draft, sent = _sent_reply(agent)
    before = _weight(draft)
    # a fair score is no complaint
    csat_record(ticket=draft.ticket, score=settings.FEEDBACK_LOW_CSAT + 1)
    assert not FlaggedReply.objects.exists()
    # when: the customer rates the conversation low
    csat_record(ticket=draft.ticket, score=settings.FEEDBACK_LOW_CSAT, comment="useless")
    # then: the last reply they had is flagged and its pair counts for less
    flagged = FlaggedReply.objects.get(reason=FlagReason.LOW_CSAT)
    assert flagged.message_id == sent.pk and flagged.draft_id == draft.pk
    assert _weight(draft) == pytest.approx(before * settings.LINK_PENALTY_FACTOR)
    csat_record(ticket=draft.ticket, score=1)  # again: still one flag, one penalty
    assert FlaggedReply.objects.count() == LinkPenalty.objects.count() == 1
    # when: they change their mind before anyone reviewed it
    csat_record(ticket=draft.ticket, score=5)
    assert not FlaggedReply.objects.exists() and _weight(draft) == pytest.approx(before)


def test_a_ticket_reopened_soon_after_its_resolution_flags_the_reply_that_resolved_it(
    copilot_ready, django_user_model, settings
):
    agent = django_user_model.objects.create_user("agent", password="pw-penalty-4")
    draft, sent = _sent_reply(agent)
    before = _weight(draft)
    ticket = Ticket.objects.get(pk=draft.ticket_id)
    ticket_resolve(ticket=ticket, actor=Actor.system())
    # when: the customer writes again (the ticket reopens), and the collection runs (beat)
    message_add(
        ticket=ticket, author_kind=AuthorKind.CUSTOMER, body="That did not work at all",
        actor=Actor.system(),
    )  # fmt: skip
    assert flagged_drafts_collect() >= 1
    flagged = FlaggedReply.objects.get(reason=FlagReason.REOPENED)
    assert (flagged.message_id, flagged.draft_id) == (sent.pk, draft.pk)
    assert _weight(draft) == pytest.approx(before * settings.LINK_PENALTY_FACTOR)
    assert flagged_drafts_collect() == 0  # idempotent
    # a reopening long after the resolution is a new question, not a complaint
    FlaggedReply.objects.all().delete()
    LinkPenalty.objects.all().delete()
    settings.FEEDBACK_REOPEN_DAYS = 1
    TicketEvent.objects.filter(ticket=ticket, to_status="resolved").update(
        at=timezone.now() - timedelta(days=3)
    )
    assert flagged_drafts_collect() == 0 and not FlaggedReply.objects.exists()
