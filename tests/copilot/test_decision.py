"""The decision at the auto-send threshold, and the intents' probability mass per article."""

from __future__ import annotations

from dataclasses import replace

import pytest

from apps.copilot.confidence import FEATURE_NAMES, ConfidenceFeatures, confidence_score
from apps.copilot.models import Decision, HandoffReason
from apps.copilot.pipeline.decision import decision_redo
from apps.copilot.pipeline.record import Composition
from apps.copilot.pipeline.retrieval import article_probabilities
from apps.copilot.selectors import policy_effective

pytestmark = pytest.mark.django_db

# Every feature ignored: the confidence is sigmoid(bias) = 0.8 for any draft.
FLAT = {
    "feature_names": list(FEATURE_NAMES),
    "weights": [0.0] * len(FEATURE_NAMES),
    "bias": 1.3862943611198906,
}


def _drafted() -> Composition:
    features = ConfidenceFeatures(
        intent_probability=0.95,
        out_of_scope=False,
        retrieval_top_score=0.7,
        retrieval_margin=0.2,
        intent_article_match=1.0,
        groundedness=1.0,
        answerable=True,
        citations_valid=True,
    )
    return Composition(
        intent="reset_password",
        answerable=True,
        drafted=True,
        citations=[{"passage_id": "P1", "external_id": "account/reset-password.md"}],
        validation={"citations_valid": True, "links_valid": True, "grounded": True},
        confidence_features=dict(zip(FEATURE_NAMES, features.vector(), strict=True)),
    )


def test_a_draft_at_the_threshold_is_auto_sent_and_just_below_it_is_reviewed():
    # given
    score = confidence_score(ConfidenceFeatures.from_stored(_drafted().confidence_features), FLAT)
    policy = policy_effective()
    # when
    at = decision_redo(
        _drafted(), calibration=FLAT, policy=replace(policy, auto_send_threshold=score)
    )
    below = decision_redo(
        _drafted(), calibration=FLAT, policy=replace(policy, auto_send_threshold=score + 1e-6)
    )
    # then
    assert score == pytest.approx(0.8)
    assert (at.decision, at.reason) == (Decision.AUTO_SENT, "")
    assert (below.decision, below.reason) == (Decision.NEEDS_REVIEW, HandoffReason.LOW_CONFIDENCE)
    assert below.reason_detail.startswith("confidence 0.800 < auto-send threshold 0.800")


def test_below_the_review_threshold_the_ticket_is_handed_off_with_its_reason():
    # given
    policy = replace(policy_effective(), auto_send_threshold=0.95, review_threshold=0.9)
    # when
    decided = decision_redo(_drafted(), calibration=FLAT, policy=policy)
    # then
    assert (decided.decision, decided.reason) == (Decision.HANDED_OFF, HandoffReason.LOW_CONFIDENCE)
    assert decided.reason_detail == "confidence 0.800 < review threshold 0.900"


def test_article_probability_adds_the_probabilities_of_intents_linked_to_the_article():
    # given: two confusable intents answered by article 1; a third by article 2
    alternatives = [
        {"intent": "card_arrival", "probability": 0.6},
        {"intent": "card_delivery_estimate", "probability": 0.3},
        {"intent": "change_pin", "probability": 0.1},
    ]
    links = {"card_arrival": {1: 1.0}, "card_delivery_estimate": {1: 0.5}, "change_pin": {2: 1.0}}
    # when
    mass = article_probabilities(alternatives, links)
    # then
    assert mass == pytest.approx({1: 0.6 + 0.3 * 0.5, 2: 0.1})
