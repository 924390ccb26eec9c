import math
import random

import pytest

from apps.copilot.confidence import (
    ConfidenceFeatures,
    calibration_fit,
    confidence_score,
    expected_calibration_error,
    threshold_for_precision,
)

STRONG = ConfidenceFeatures(
    intent_probability=0.97,
    out_of_scope=False,
    retrieval_top_score=0.82,
    retrieval_margin=0.25,
    intent_article_match=1.0,
    groundedness=1.0,
    answerable=True,
    citations_valid=True,
    intent_margin=0.9,
    retrieval_agrees=True,
    article_probability=0.97,
)
WEAK = ConfidenceFeatures(
    intent_probability=0.3,
    out_of_scope=True,
    retrieval_top_score=0.2,
    retrieval_margin=0.01,
    intent_article_match=False,
    groundedness=0.4,
    answerable=False,
    citations_valid=True,
)


def test_default_weights_rank_a_strong_draft_above_a_weak_one():
    assert confidence_score(STRONG) > 0.9
    assert confidence_score(WEAK) < 0.15


def test_expected_calibration_error_is_zero_when_confidence_matches_accuracy():
    # given: 10 drafts at 0.8 of which 8 are right
    probabilities = [0.8] * 10
    labels = [True] * 8 + [False] * 2
    # then
    assert expected_calibration_error(probabilities, labels) == pytest.approx(0.0)
    assert expected_calibration_error([0.9] * 10, [False] * 10) == pytest.approx(0.9)


def test_threshold_for_precision_picks_the_lowest_threshold_meeting_the_target():
    # given: scores and outcomes; above 0.7 all correct, 0.6 wrong
    scores = [0.99, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.6, 0.5, 0.4]
    labels = [True, True, True, True, True, True, True, False, True, False]
    # when / then
    assert threshold_for_precision(scores, labels, target_precision=1.0, minimum_support=3) == 0.7
    assert threshold_for_precision(scores, labels, target_precision=0.85, minimum_support=3) == 0.5
    assert threshold_for_precision(scores, labels, target_precision=1.0, minimum_support=8) is None


def test_calibration_fit_learns_which_signals_predict_correct_drafts():
    # given: synthetic gold outcomes where retrieval strength decides correctness
    rng = random.Random(7)
    features, labels = [], []
    for _ in range(300):
        top = rng.random()
        features.append(
            ConfidenceFeatures(
                intent_probability=rng.random(),
                out_of_scope=False,
                retrieval_top_score=top,
                retrieval_margin=rng.random() * 0.3,
                intent_article_match=rng.random() > 0.5,
                groundedness=rng.random(),
                answerable=True,
                citations_valid=True,
            )
        )
        labels.append(rng.random() < top)
    # when
    calibration = calibration_fit(features, labels)
    # then: retrieval has the largest weight and the scores are calibrated on held-out folds
    weights = dict(zip(calibration["feature_names"], calibration["weights"], strict=True))
    assert max(weights, key=weights.get) == "retrieval_top_score"
    assert calibration["metrics"]["expected_calibration_error"] < 0.08
    assert confidence_score(features[0], calibration) == pytest.approx(
        calibration_score_by_hand(features[0], calibration)
    )


def calibration_score_by_hand(features, calibration):
    import math

    logit = calibration["bias"] + sum(
        w * v for w, v in zip(calibration["weights"], features.vector(), strict=True)
    )
    return 1 / (1 + math.exp(-logit))


def test_calibration_needs_both_outcomes():
    with pytest.raises(ValueError, match="both correct and incorrect"):
        calibration_fit([STRONG, STRONG], [True, True])


def test_features_stored_by_an_older_draft_score_without_the_newer_features():
    # given: a draft stored before intent_margin, retrieval_agrees, article_probability
    stored = {
        "intent_probability": 0.9,
        "out_of_scope": 0.0,
        "retrieval_top_score": 0.7,
        "retrieval_margin": 0.2,
        "intent_article_match": 1.0,
        "groundedness": 1.0,
        "answerable": 1.0,
        "citations_valid": 1.0,
    }
    # when
    features = ConfidenceFeatures.from_stored(stored)
    # then
    assert (features.answerable, features.retrieval_agrees) == (True, False)
    assert (features.intent_article_match, features.article_probability) == (1.0, 0.0)


def test_a_calibration_fitted_on_fewer_features_uses_only_those():
    # given: a calibration that knows one feature
    calibration = {"feature_names": ["intent_probability"], "weights": [2.0], "bias": -1.0}
    # when
    score = confidence_score(STRONG, calibration)
    # then
    assert score == pytest.approx(1 / (1 + math.exp(-(2.0 * 0.97 - 1.0))))
