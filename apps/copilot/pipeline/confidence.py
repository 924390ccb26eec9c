"""Stage 8, confidence: the calibrated probability that the reply is right.

Its inputs (`ConfidenceFeatures`) come from triage (the kept reading's probabilities),
retrieval (similarities, margins, the intent's links) and validation; the combination is the
active calibration's (apps.copilot.confidence). Also answers, before drafting, whether the
draft can reach the auto-send threshold at all (`reachable`): only then may the customer
watch it being written.
"""

from __future__ import annotations

from dataclasses import dataclass

from apps.copilot.confidence import (
    DEFAULT_CALIBRATION,
    FEATURE_NAMES,
    ConfidenceFeatures,
    confidence_score,
)
from apps.copilot.models import Calibration
from apps.copilot.pipeline.reading import Reading
from apps.copilot.pipeline.retrieval import Retrieval


@dataclass(frozen=True)
class Basis:
    """What triage and retrieval found that the confidence reads, whatever gets cited."""

    intent_probability: float
    out_of_scope: bool
    top_score: float
    margin: float
    intent_margin: float
    searched_first: int | None
    links: dict[int, float]
    article_probability: dict[int, float]

    def features(
        self, article_id: int, *, groundedness: float, answerable: bool, citations_valid: bool
    ) -> ConfidenceFeatures:
        """The confidence's inputs for a reply that cites `article_id` first."""
        return ConfidenceFeatures(
            intent_probability=self.intent_probability,
            out_of_scope=self.out_of_scope,
            retrieval_top_score=self.top_score,
            retrieval_margin=self.margin,
            intent_article_match=self.links.get(article_id, 0.0),
            groundedness=groundedness,
            answerable=answerable,
            citations_valid=citations_valid,
            intent_margin=self.intent_margin,
            retrieval_agrees=article_id == self.searched_first,
            article_probability=self.article_probability.get(article_id, 0.0),
        )


@dataclass(frozen=True)
class Confidence:
    score: float
    features: dict[str, float]
    calibration_version: int | None


def basis_of(reading: Reading, retrieval: Retrieval) -> Basis:
    triage = reading.triage
    similarities = [hit.similarity or 0.0 for hit in retrieval.hits]
    ranked = [a.probability for a in triage.alternatives] if triage.intent else []
    return Basis(
        intent_probability=triage.confidence if triage.intent else 0.0,
        out_of_scope=triage.out_of_scope,
        top_score=similarities[0],
        margin=similarities[0] - (max(similarities[1:]) if len(similarities) > 1 else 0.0),
        intent_margin=(ranked[0] - ranked[1]) if len(ranked) > 1 else (ranked[0] if ranked else 0),
        searched_first=retrieval.searched_first,
        links=retrieval.links,
        article_probability=retrieval.article_probability,
    )


def weights_of(calibration: Calibration | None) -> dict:
    return calibration.weights if calibration is not None else DEFAULT_CALIBRATION


def reachable(basis: Basis, article_id: int, calibration: Calibration | None) -> float:
    """The best confidence a reply citing `article_id` first can get: grounded, answerable,
    validly cited."""
    best_case = basis.features(article_id, groundedness=1.0, answerable=True, citations_valid=True)
    return confidence_score(best_case, weights_of(calibration))


def confidence_compute(
    basis: Basis,
    *,
    article_id: int,
    groundedness: float,
    answerable: bool,
    citations_valid: bool,
    calibration: Calibration | None,
) -> Confidence:
    features = basis.features(
        article_id,
        groundedness=groundedness,
        answerable=answerable,
        citations_valid=citations_valid,
    )
    return Confidence(
        score=round(confidence_score(features, weights_of(calibration)), 6),
        features={
            name: float(value) for name, value in zip(FEATURE_NAMES, features.vector(), strict=True)
        },
        calibration_version=calibration.version if calibration is not None else None,
    )
