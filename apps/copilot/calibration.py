"""Calibrating confidence on a gold set, in evaluation mode (no ticket, nothing sent).

Each gold question is composed like a customer message. A drafted reply is labelled correct
when the question is answerable in English and its first citation is the expected article;
every other drafted reply (out of scope, no answer, other language, asks for a human) is
incorrect, since sending it would be wrong. The logistic calibration is fitted on one half
(deterministic, stratified by the expected outcome), the auto-send threshold is picked for
the target precision on that half's cross-validated scores, and the other half reports
held-out figures at that threshold.
"""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

from django.db import transaction

from apps.copilot.confidence import (
    DEFAULT_CALIBRATION,
    ConfidenceFeatures,
    calibration_fit,
    threshold_for_precision,
)
from apps.copilot.models import Calibration, Decision
from apps.copilot.pipeline.compose import draft_compose
from apps.copilot.pipeline.context import Conversation
from apps.copilot.pipeline.decision import decision_redo
from apps.copilot.pipeline.record import Composition
from apps.copilot.selectors import EffectivePolicy, policy_effective
from apps.copilot.services import prompt_template_ensure_default
from apps.core.exceptions import ActivationRefusedError
from apps.core.gate import activation_gate

HANDOFF_NOTES = {"asks_for_human", "out_of_scope", "no_answer", "other_language"}


@dataclass(frozen=True)
class GoldQuestion:
    question: str
    intent: str
    expected_article: str
    note: str

    @property
    def answerable(self) -> bool:
        return bool(self.expected_article) and self.note not in HANDOFF_NOTES


@dataclass
class GoldOutcome:
    gold: GoldQuestion
    composition: Composition

    @property
    def cited_article(self) -> str:
        citations = self.composition.citations
        return citations[0]["external_id"] if citations else ""

    @property
    def correct(self) -> bool:
        """Correct reply: answerable and the first citation is the expected article."""
        return self.gold.answerable and self.cited_article == self.gold.expected_article


@dataclass
class Figures:
    questions: int
    auto_sent: int
    auto_sent_correct: int
    decisions: dict = field(default_factory=dict)
    reasons: dict = field(default_factory=dict)
    answerable_handled_by_people: int = 0

    @property
    def auto_sent_share(self) -> float:
        return self.auto_sent / self.questions if self.questions else 0.0

    @property
    def precision(self) -> float | None:
        return self.auto_sent_correct / self.auto_sent if self.auto_sent else None

    def as_dict(self) -> dict:
        return {
            "questions": self.questions,
            "auto_sent": self.auto_sent,
            "auto_sent_share": round(self.auto_sent_share, 4),
            "auto_sent_precision": None if self.precision is None else round(self.precision, 4),
            "decisions": self.decisions,
            "reasons": self.reasons,
        }


def gold_read(*, path: Path) -> list[GoldQuestion]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return [
        GoldQuestion(
            question=row["question"].strip(),
            intent=(row.get("intent") or "").strip(),
            expected_article=(row.get("expected_article") or "").strip(),
            note=(row.get("note") or "").strip(),
        )
        for row in rows
        if (row.get("question") or "").strip()
    ]


def gold_split(questions: list[GoldQuestion]) -> tuple[list[GoldQuestion], list[GoldQuestion]]:
    """(fit half, held-out half): alternate within each expected outcome, in a stable order."""
    groups: dict[str, list[GoldQuestion]] = {}
    for question in questions:
        groups.setdefault(question.note or question.intent, []).append(question)
    fit: list[GoldQuestion] = []
    held: list[GoldQuestion] = []
    for key in sorted(groups):
        ordered = sorted(groups[key], key=lambda q: hashlib.sha256(q.question.encode()).hexdigest())
        for index, question in enumerate(ordered):
            (fit if index % 2 == 0 else held).append(question)
    return fit, held


def gold_compose(questions: list[GoldQuestion]) -> list[GoldOutcome]:
    """Compose a draft for each question (evaluation: no ticket, no cache, nothing sent)."""
    prompt = prompt_template_ensure_default()
    policy = policy_effective()
    return [
        GoldOutcome(
            gold=question,
            composition=draft_compose(
                conversation=Conversation(message=question.question),
                prompt=prompt,
                policy=policy,
                use_cache=False,
            ),
        )
        for question in questions
    ]


def figures_at(outcomes: list[GoldOutcome], *, calibration: dict, threshold: float) -> Figures:
    """Decisions and auto-send precision when `calibration` and `threshold` are in force."""
    policy = replace(policy_effective(), auto_send_threshold=threshold)
    decisions: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    auto = correct = 0
    for outcome in outcomes:
        decided = decision_redo(outcome.composition, calibration=calibration, policy=policy)
        decisions[decided.decision] += 1
        if decided.decision == Decision.AUTO_SENT:
            auto += 1
            correct += GoldOutcome(outcome.gold, decided).correct
        else:
            reasons[decided.reason] += 1
    return Figures(
        questions=len(outcomes),
        auto_sent=auto,
        auto_sent_correct=correct,
        decisions=dict(decisions),
        reasons=dict(reasons),
    )


def _features(composition: Composition) -> ConfidenceFeatures:
    return ConfidenceFeatures.from_stored(composition.confidence_features)


def confidence_decides(composition: Composition, *, policy: EffectivePolicy) -> bool:
    """Whether the confidence alone decides this draft's fate (auto-send or not).

    A draft the model found unanswerable, that failed validation, or whose intent is always
    reviewed never goes out on its own: it says nothing about where the threshold belongs.
    """
    anything = replace(policy, auto_send_threshold=0.0)
    return (
        composition.drafted
        and decision_redo(composition, calibration=DEFAULT_CALIBRATION, policy=anything).decision
        == Decision.AUTO_SENT
    )


def calibration_from_outcomes(
    outcomes: list[GoldOutcome], *, target_precision: float, minimum_support: int = 10
) -> tuple[dict, float]:
    """(fitted calibration, auto-send threshold) from composed gold outcomes, fitted on the
    drafts that the confidence alone decides about.

    The threshold is the lowest reaching `target_precision` on the cross-validated scores;
    1.0 (nothing auto-sent) when none does.
    """
    policy = policy_effective()
    drafted = [o for o in outcomes if confidence_decides(o.composition, policy=policy)]
    if len({o.correct for o in drafted}) < 2:
        # A small gold set whose decidable drafts are all right (or all wrong) cannot place a
        # threshold between them: learn from every drafted reply instead.
        drafted = [o for o in outcomes if o.composition.drafted]
    fitted = calibration_fit(
        [_features(o.composition) for o in drafted], [o.correct for o in drafted]
    )
    threshold = threshold_for_precision(
        fitted["metrics"]["held_out_scores"],
        [o.correct for o in drafted],
        target_precision=target_precision,
        minimum_support=minimum_support,
    )
    return fitted, 1.0 if threshold is None else threshold


@dataclass
class CalibrationReport:
    calibration: Calibration
    fitted: dict
    threshold: float
    fit_figures: Figures
    held_out_figures: Figures
    fit_questions: int
    held_out_questions: int
    activation_refused: str = ""  # the regression gate's reason, when it refused


def calibration_run(
    *,
    gold_path: Path,
    target_precision: float = 0.97,
    activate: bool = True,
    minimum_support: int = 10,
) -> CalibrationReport:
    """Fit the confidence calibration on half the gold set; report the other half.

    Stores (and with `activate`, activates) a new Calibration with the picked threshold.
    No threshold reaching the target → 1.0 (nothing is auto-sent), which the report says.
    """
    questions = gold_read(path=gold_path)
    fit_half, held_half = gold_split(questions)
    fit_outcomes = gold_compose(fit_half)
    held_outcomes = gold_compose(held_half)
    fitted, threshold = calibration_from_outcomes(
        fit_outcomes, target_precision=target_precision, minimum_support=minimum_support
    )
    weights = {k: fitted[k] for k in ("method", "feature_names", "weights", "bias")}
    fit_figures = figures_at(fit_outcomes, calibration=weights, threshold=threshold)
    held_figures = figures_at(held_outcomes, calibration=weights, threshold=threshold)
    metrics = {
        **{k: v for k, v in fitted["metrics"].items() if k != "held_out_scores"},
        "fit": fit_figures.as_dict(),
        "held_out": held_figures.as_dict(),
    }
    calibration = calibration_store(
        weights=weights,
        metrics=metrics,
        threshold=threshold,
        target_precision=target_precision,
        fitted_on=str(gold_path),
    )
    refused = ""
    if activate:
        try:
            calibration = calibration_activate(calibration=calibration, requested_by="calibrate")
        except ActivationRefusedError as error:
            refused = error.message
    return CalibrationReport(
        calibration=calibration,
        fitted=fitted,
        threshold=threshold,
        fit_figures=fit_figures,
        held_out_figures=held_figures,
        fit_questions=len(fit_half),
        held_out_questions=len(held_half),
        activation_refused=refused,
    )


@transaction.atomic
def calibration_store(
    *, weights: dict, metrics: dict, threshold: float, target_precision: float, fitted_on: str
) -> Calibration:
    """A new calibration version, stored inactive (`fitted_on`: a gold set's path, or which
    live outcomes)."""
    version = (
        Calibration.objects.select_for_update()
        .order_by("-version")
        .values_list("version", flat=True)
        .first()
        or 0
    ) + 1
    return Calibration.objects.create(
        version=version,
        weights=weights,
        metrics=metrics,
        auto_send_threshold=threshold,
        target_precision=target_precision,
        gold_set=fitted_on,
        is_active=False,
    )


def calibration_activate(
    *, calibration: Calibration, override_reason: str = "", requested_by: str = ""
) -> Calibration:
    """Make this calibration the active one, once the regression gate found the decisions
    it leads to not worse than the active calibration's on the gold sets."""
    gate = activation_gate()
    if gate is not None and not calibration.is_active:
        gate(
            kind="calibration",
            version=calibration.version,
            override_reason=override_reason,
            requested_by=requested_by,
        )
    with transaction.atomic():
        Calibration.objects.filter(is_active=True).update(is_active=False)
        Calibration.objects.filter(pk=calibration.pk).update(is_active=True)
    calibration.refresh_from_db()
    return calibration
