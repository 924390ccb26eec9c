"""A thumbs-down lowers the intent→article link the reply stood on, until it is reviewed."""

from __future__ import annotations

import pytest

from apps.copilot.models import DraftStatus, LinkPenalty
from apps.copilot.selectors import intents_article_weights
from apps.copilot.services import pipeline_run
from apps.feedback.drafts import draft_send_recorded
from apps.feedback.models import FlaggedReply, FlagReason
from apps.feedback.services import flagged_reply_review, reply_rate
from apps.tickets.models import Message
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
