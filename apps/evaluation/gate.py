"""The regression gate: a new version goes live only if the gold sets say it is not worse.

The candidate and the active configuration are run on the same gold sets and compared on
the same items (paired by `item_key`). For each metric, the difference (candidate - active)
gets a 95% paired-bootstrap interval (resampling items, GATE_BOOTSTRAP resamples, a fixed
seed so a decision can be reproduced). The candidate is refused when, on some metric, the
difference is worse than that metric's tolerance AND the whole interval is on the worse
side of zero: a real drop blocks, noise (an interval that straddles zero) does not.

Metrics, each a per-item 0/1:
  intent_accuracy   the intent is the expected one (items with an expected intent)
  article_hit1      the first retrieved article is an expected one (items with one)
  decision_right    auto-sent a right reply, or kept back one that was wrong or a person's
  wrong_auto_send   auto-sent a reply that was wrong (lower is better: the precision guard)

An admin can override a refusal with a written reason; the decision, its figures and the
reason are kept as a GateDecision row (read-only in the admin).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
from django.conf import settings

from apps.core.exceptions import ActivationRefusedError, ValidationError
from apps.evaluation.models import EvalResult, EvalRun, GateDecision, GoldSet, RunStatus
from apps.evaluation.runs import configuration, eval_batch_run, eval_run_create

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Metric:
    name: str
    higher_is_better: bool = True

    def value(self, result: EvalResult) -> float | None:
        item = result.item
        if self.name == "intent_accuracy":
            return None if result.intent_correct is None else float(result.intent_correct)
        if self.name == "article_hit1":
            if item is None or not item.expected_articles:
                return None
            return float(result.article_rank == 1)
        if self.name == "decision_right":
            return float(result.correct)
        if self.name == "wrong_auto_send":
            return float(result.decision == "auto_sent" and not result.correct)
        raise ValueError(self.name)


METRICS = (
    Metric("intent_accuracy"),
    Metric("article_hit1"),
    Metric("decision_right"),
    Metric("wrong_auto_send", higher_is_better=False),
)


@dataclass(frozen=True)
class Check:
    gold_set: str
    metric: str
    items: int
    candidate: float
    active: float
    difference: float  # candidate - active
    low: float
    high: float
    tolerance: float
    worse: bool

    def describe(self) -> str:
        return (
            f"{self.metric} on {self.gold_set}: {self.candidate:.3f} vs {self.active:.3f} active "
            f"(difference {self.difference:+.3f}, 95% interval "
            f"[{self.low:+.3f}, {self.high:+.3f}], {self.items} paired items, "
            f"tolerance {self.tolerance:.3f})"
        )


def paired_checks(*, candidate: EvalRun, active: EvalRun) -> list[Check]:
    """Each metric's paired comparison of two runs on the same gold set."""
    if candidate.gold_set_id != active.gold_set_id:
        raise ValidationError(
            f"run #{candidate.pk} is on gold set {candidate.gold_set.name!r} and run "
            f"#{active.pk} on {active.gold_set.name!r}: only runs on the same items compare"
        )
    for run in (candidate, active):
        if run.status != RunStatus.SUCCEEDED:
            raise ValidationError(f"run #{run.pk} is {run.status}, not succeeded: no figures")
    ours = {r.item_key: r for r in candidate.results.select_related("item") if not r.error}
    theirs = {r.item_key: r for r in active.results.select_related("item") if not r.error}
    shared = sorted(ours.keys() & theirs.keys())
    checks = []
    for metric in METRICS:
        pairs = [
            (metric.value(ours[key]), metric.value(theirs[key]))
            for key in shared
            if metric.value(ours[key]) is not None and metric.value(theirs[key]) is not None
        ]
        if not pairs:
            continue
        values = np.array(pairs, dtype=float)
        differences = values[:, 0] - values[:, 1]
        low, high = _bootstrap_interval(differences)
        difference = float(differences.mean())
        tolerance = settings.EVAL_GATE_TOLERANCE.get(metric.name, 0.02)
        if metric.higher_is_better:
            worse = difference < -tolerance and high < 0
        else:
            worse = difference > tolerance and low > 0
        checks.append(
            Check(
                gold_set=candidate.gold_set.name,
                metric=metric.name,
                items=len(pairs),
                candidate=float(values[:, 0].mean()),
                active=float(values[:, 1].mean()),
                difference=difference,
                low=low,
                high=high,
                tolerance=tolerance,
                worse=worse,
            )
        )
    return checks


def _bootstrap_interval(differences: np.ndarray) -> tuple[float, float]:
    """95% percentile interval of the mean paired difference, resampling items."""
    rng = np.random.default_rng(settings.EVAL_GATE_SEED)
    picks = rng.integers(0, len(differences), size=(settings.EVAL_GATE_BOOTSTRAP, len(differences)))
    means = differences[picks].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def _run_inline(gold_set: GoldSet, *, against: dict[str, int], label: str) -> EvalRun:
    """A run done here and now, by the same code the `eval` workers run (the gate answers
    the command or admin that asked, so it does not wait on a queue)."""
    run = eval_run_create(gold_set=gold_set, label=label, against=against, publish=False)
    eval_batch_run(run_id=run.pk, item_ids=list(gold_set.items.values_list("pk", flat=True)))
    run.refresh_from_db()
    return run


def _active_run(gold_set: GoldSet) -> EvalRun:
    """The latest succeeded run of what is active now on the gold set, or a new one (its
    knowledge base too: a run before an import measured another one)."""
    active = configuration({})
    keys = ("classifier_version_id", "prompt_version", "calibration_version", "knowledge_version")
    # Any run that measured these versions will do (a gate's candidate run, once activated).
    for run in EvalRun.objects.filter(gold_set=gold_set, status=RunStatus.SUCCEEDED).order_by(
        "-id"
    )[:20]:
        if all(run.config.get(key) == active.get(key) for key in keys):
            return run
    return _run_inline(gold_set, against={}, label="gate: active")


def activation_gate(
    *, kind: str, version: int, override_reason: str = "", requested_by: str = ""
) -> GateDecision:
    """Compare `kind` version `version` (classifier, prompt, calibration) with what is
    active on every gold set that measures it. Returns the recorded decision; raises
    ActivationRefusedError naming the metrics that got worse (unless `override_reason`)."""
    gold_sets = GoldSet.objects.filter(items__isnull=False).distinct().order_by("name")
    if kind == "classifier":
        gold_sets = gold_sets.filter(items__expected_intent__gt="")
    checks: list[Check] = []
    runs = []
    for gold_set in gold_sets:
        candidate = _run_inline(gold_set, against={kind: version}, label=f"gate: {kind} {version}")
        active = _active_run(gold_set)
        runs += [candidate.pk, active.pk]
        if candidate.status != RunStatus.SUCCEEDED or active.status != RunStatus.SUCCEEDED:
            raise ActivationRefusedError(
                f"the gate's runs did not finish (runs #{candidate.pk}, #{active.pk}): see them "
                "in the admin"
            )
        checks += paired_checks(candidate=candidate, active=active)
    worse = [check for check in checks if check.worse]
    decision = GateDecision.objects.create(
        kind=kind,
        version=version,
        passed=not worse,
        overridden=bool(worse and override_reason.strip()),
        override_reason=override_reason.strip()[:2000],
        requested_by=requested_by[:200],
        checks=[asdict(check) for check in checks],
        run_ids=runs,
    )
    if not gold_sets.exists():
        logger.warning(
            "no gold set measures %s versions: %s %s passes unchecked", kind, kind, version
        )
    if worse and not decision.overridden:
        how = (
            f'manage.py triage_activate {version} --override-reason "..."'
            if kind == "classifier"
            else "an override reason"
        )
        raise ActivationRefusedError(
            f"{kind} version {version} is worse than the active one: "
            + "; ".join(check.describe() for check in worse)
            + f". To activate it anyway, give a reason: {how}"
        )
    return decision
