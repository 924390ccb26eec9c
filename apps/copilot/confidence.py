"""One confidence per draft: an estimate of the probability that the reply is correct.

The signals (classifier probability, retrieval strength and margin, groundedness, the
model's own answerability flag, ...) are combined by a logistic model. Its weights are fitted
on a gold set by `copilot_calibrate` (Platt-style: the output is a calibrated probability),
and stored as a versioned calibration; before any calibration exists, the default weights
below (the shipped calibration's) are used and drafts say so (no calibration version).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

FEATURE_NAMES = (
    "intent_probability",
    "out_of_scope",
    "retrieval_top_score",
    "retrieval_margin",
    "intent_article_match",
    "groundedness",
    "answerable",
    "citations_valid",
    "intent_margin",
    "retrieval_agrees",
    "article_probability",
)
# Features that are yes/no (stored as 0.0/1.0 in a draft's confidence_features).
FLAG_NAMES = frozenset({"out_of_scope", "answerable", "citations_valid", "retrieval_agrees"})

# Used when no calibration is active (a fresh instance): the shipped calibration,
# fixtures/demo/copilot/calibration.json, fitted by benchmarks/copilot_pipeline.py on the
# gold sets of two unrelated help centers pooled (Fernhill's, and Ashgrove Bank's with
# Banking77 questions); its threshold for 98% cross-validated precision (a point of margin
# over the 97% a help center it never saw must reach), 0.9398, rounded up to 0.94, is
# settings.COPILOT_AUTO_SEND_THRESHOLD's default. Refit whenever a feature's meaning changes
# (last: links weighted by the classifier's reading of the article's passages).
DEFAULT_CALIBRATION: dict[str, Any] = {
    "method": "logistic",
    "feature_names": list(FEATURE_NAMES),
    "weights": [
        0.548,
        0.0,
        1.1474,
        1.2441,
        0.905,
        -0.0043,
        -0.0043,
        -0.0043,
        1.3385,
        0.1443,
        2.9771,
    ],
    "bias": -2.7451,
}


@dataclass(frozen=True)
class ConfidenceFeatures:
    """What the confidence is computed from. Every feature means the same on any knowledge
    base and intent set (probabilities, ranks, agreements, similarities of one fixed
    embedding model), so a calibration fitted on one help center transfers to another."""

    intent_probability: float  # calibrated classifier probability; 0 when unclassified
    out_of_scope: bool
    retrieval_top_score: float  # cosine similarity of the best passage to the question
    retrieval_margin: float  # best minus second-best article's similarity
    intent_article_match: float  # link weight of the predicted intent to the cited article
    groundedness: float  # from validation, 0..1
    answerable: bool  # the model says the passages answer the question
    citations_valid: bool
    # The classifier's top intent probability minus the runner-up's.
    intent_margin: float = 0.0
    # The cited article is the one the search ranked first before the intent's boost.
    retrieval_agrees: bool = False
    # The classifier's probability mass on intents linked to the cited article (each
    # alternative's probability times its link weight): two confusable intents answered by
    # the same article do not make the reply less right.
    article_probability: float = 0.0

    def vector(self) -> list[float]:
        values = asdict(self)
        return [float(values[name]) for name in FEATURE_NAMES]

    @classmethod
    def from_stored(cls, values: dict) -> ConfidenceFeatures:
        """From a draft's `confidence_features` (older drafts lack the newer features)."""
        known = {name: values[name] for name in FEATURE_NAMES if name in values}
        return cls(
            **{  # type: ignore[arg-type]  # flags become bool, the rest float, by name
                name: bool(value) if name in FLAG_NAMES else float(value)
                for name, value in known.items()
            }
        )


def _sigmoid(value: float) -> float:
    if value >= 0:
        return 1.0 / (1.0 + math.exp(-value))
    exponential = math.exp(value)
    return exponential / (1.0 + exponential)


def confidence_score(features: ConfidenceFeatures, calibration: dict | None = None) -> float:
    """The calibrated probability that the draft is correct, in [0, 1]."""
    calibration = calibration or DEFAULT_CALIBRATION
    names: list[str] = list(calibration["feature_names"])
    weights: list[float] = list(calibration["weights"])
    values = dict(zip(FEATURE_NAMES, features.vector(), strict=True))
    logit = float(calibration["bias"]) + sum(
        weight * values[name] for name, weight in zip(names, weights, strict=True)
    )
    return _sigmoid(logit)


def expected_calibration_error(
    probabilities: Sequence[float], labels: Sequence[bool], bins: int = 10
) -> float:
    """Weighted mean |accuracy - confidence| over equal-width probability bins."""
    if not probabilities:
        return 0.0
    total = len(probabilities)
    error = 0.0
    for index in range(bins):
        low, high = index / bins, (index + 1) / bins
        members = [
            (probability, label)
            for probability, label in zip(probabilities, labels, strict=True)
            if low <= probability < high or (index == bins - 1 and probability == 1.0)
        ]
        if not members:
            continue
        accuracy = sum(label for _, label in members) / len(members)
        mean_confidence = sum(probability for probability, _ in members) / len(members)
        error += len(members) / total * abs(accuracy - mean_confidence)
    return error


def threshold_for_precision(
    probabilities: Sequence[float],
    labels: Sequence[bool],
    *,
    target_precision: float,
    minimum_support: int = 10,
) -> float | None:
    """The lowest threshold whose auto-sent set (score ≥ threshold) meets the precision target.

    None when no threshold with at least `minimum_support` drafts above it reaches it.
    """
    ranked = sorted(zip(probabilities, labels, strict=True), key=lambda pair: -pair[0])
    best: float | None = None
    correct = 0
    for count, (probability, label) in enumerate(ranked, start=1):
        correct += bool(label)
        is_last_of_tie = count == len(ranked) or ranked[count][0] < probability
        if is_last_of_tie and count >= minimum_support and correct / count >= target_precision:
            best = probability
    return best


def calibration_fit(
    features: Sequence[ConfidenceFeatures], labels: Sequence[bool], *, regularisation: float = 1.0
) -> dict:
    """Fit the logistic combination on gold outcomes; returns the calibration to store.

    Needs both outcomes in `labels`. Metrics are measured by 5-fold cross-validation, so
    they describe drafts the fit has not seen.
    """
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    if len(set(labels)) < 2:
        raise ValueError("calibration needs both correct and incorrect drafts in the gold set")
    matrix = np.array([feature.vector() for feature in features])
    target = np.array([bool(label) for label in labels])
    model = LogisticRegression(C=regularisation, max_iter=1000)
    folds = min(5, int(target.sum()), int((~target).sum()))
    held_out = (
        cross_val_predict(
            model,
            matrix,
            target,
            cv=StratifiedKFold(folds, shuffle=True, random_state=0),
            method="predict_proba",
        )[:, 1]
        if folds >= 2
        else model.fit(matrix, target).predict_proba(matrix)[:, 1]
    )
    model.fit(matrix, target)
    return {
        "method": "logistic",
        "feature_names": list(FEATURE_NAMES),
        "weights": [float(weight) for weight in model.coef_[0]],
        "bias": float(model.intercept_[0]),
        "metrics": {
            "examples": len(target),
            "correct": int(target.sum()),
            "expected_calibration_error": expected_calibration_error(
                held_out.tolist(), target.tolist()
            ),
            "brier": float(np.mean((held_out - target) ** 2)),
            "held_out_scores": [round(float(score), 4) for score in held_out],
        },
    }
