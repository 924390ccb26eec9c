"""A/B experiments read from live outcomes: per-arm figures with intervals, the verdict at
the fixed horizon, closing an experiment that reached it, promoting the winner.

The unit is the pipeline's draft for a customer message (generation 1) in the arm; CSAT and
reopened tickets are per ticket. Shares carry Wilson 95% intervals, means a bootstrap one;
each arm's difference from the control on the primary metric carries a Newcombe (hybrid
Wilson score) interval at the experiment's alpha split over the comparisons (Bonferroni).
The stopping rule is the experiment's: its horizon is fixed before it starts, and the
verdict is read once, when every live arm has reached it. Figures before then are shown for
spotting harm (stop the experiment) and say they are provisional.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
from django.utils import timezone
from scipy.stats import binomtest, bootstrap

from apps.copilot.models import (
    Decision,
    Draft,
    DraftStatus,
    Experiment,
    ExperimentArm,
    ExperimentMetric,
    ExperimentStatus,
)
from apps.copilot.services.experiments import experiment_arm_apply, experiment_end
from apps.core.exceptions import ConflictError, ValidationError
from apps.feedback.models import DraftActionKind, RatingValue
from apps.feedback.selectors import csat_scores, draft_outcomes
from apps.tickets.selectors import reopened_at

LOWER_IS_BETTER = {ExperimentMetric.REJECTED}


@dataclass
class ArmFigures:
    """One arm's outcomes: counts per metric (successes, trials) and samples of the means."""

    drafts: int = 0
    tickets: set[int] = field(default_factory=set)
    counts: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    samples: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def count(self, metric: str, success: bool) -> None:
        self.counts[metric][0] += int(success)
        self.counts[metric][1] += 1


def wilson(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    if not trials:
        return (0.0, 1.0)
    interval = binomtest(successes, trials).proportion_ci(
        confidence_level=confidence, method="wilson"
    )
    return (float(interval.low), float(interval.high))


def newcombe(
    control: tuple[int, int], arm: tuple[int, int], confidence: float
) -> tuple[float, float, float]:
    """The arm's share minus the control's, and Newcombe's hybrid score interval for it
    (Newcombe 1998, method 10; no library we ship has it, it is four lines over Wilson's)."""
    (s1, n1), (s2, n2) = control, arm
    p1, p2 = s1 / n1, s2 / n2
    l1, u1 = wilson(s1, n1, confidence)
    l2, u2 = wilson(s2, n2, confidence)
    difference = p2 - p1
    low = difference - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)
    high = difference + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)
    return difference, low, high


def _mean_interval(values: list[float]) -> dict:
    if not values:
        return {"mean": None, "n": 0}
    data = np.asarray(values, dtype=float)
    mean = float(data.mean())
    if len(data) < 3 or float(data.std()) == 0.0:
        return {
            "mean": round(mean, 6),
            "low": round(mean, 6),
            "high": round(mean, 6),
            "n": len(data),
        }
    result = bootstrap(
        (data,), np.mean, n_resamples=2000, method="percentile", random_state=0, vectorized=True
    )
    interval = result.confidence_interval
    return {
        "mean": round(mean, 6),
        "low": round(float(interval.low), 6),
        "high": round(float(interval.high), 6),
        "n": len(data),
    }


def _arm_figures(arms: list[ExperimentArm]) -> dict[int, ArmFigures]:
    drafts = list(
        Draft.objects.filter(experiment_arm__in=arms, generation=1, evaluation=False).values(
            "id",
            "experiment_arm_id",
            "ticket_id",
            "decision",
            "status",
            "cost_usd",
            "stage_timings",
            "created_at",
        )
    )
    outcomes = draft_outcomes(draft_ids=[d["id"] for d in drafts])
    ticket_ids = sorted({d["ticket_id"] for d in drafts})
    csat, reopens = csat_scores(ticket_ids=ticket_ids), reopened_at(ticket_ids=ticket_ids)
    figures = {arm.pk: ArmFigures() for arm in arms}
    first_draft_at: dict[tuple[int, int], object] = {}
    for draft in drafts:
        arm = figures[draft["experiment_arm_id"]]
        outcome = outcomes.get(draft["id"])
        action = outcome.action if outcome else ""
        auto_sent = (
            draft["decision"] == Decision.AUTO_SENT and draft["status"] == DraftStatus.AUTO_SENT
        )
        arm.drafts += 1
        arm.tickets.add(draft["ticket_id"])
        key = (draft["experiment_arm_id"], draft["ticket_id"])
        first_draft_at.setdefault(key, draft["created_at"])
        arm.count(ExperimentMetric.AUTO_SENT, auto_sent)
        arm.count(ExperimentMetric.ACCEPTED, auto_sent or action == DraftActionKind.ACCEPTED)
        arm.count(ExperimentMetric.REJECTED, action == DraftActionKind.REJECTED)
        if action:
            arm.count("agent_sent_unchanged", action == DraftActionKind.ACCEPTED)
        if outcome and outcome.edit_ratio is not None:
            arm.samples["edit_ratio"].append(outcome.edit_ratio)
        if outcome and outcome.thumbs:
            arm.count(ExperimentMetric.THUMBS_UP, outcome.thumbs == RatingValue.UP)
        arm.samples["cost_usd"].append(float(draft["cost_usd"] or Decimal(0)))
        total = (draft["stage_timings"] or {}).get("total")
        if isinstance(total, int | float):
            arm.samples["latency_ms"].append(float(total))
    for (arm_id, ticket_id), since in first_draft_at.items():
        arm = figures[arm_id]
        arm.count("reopened", any(at > since for at in reopens.get(ticket_id, [])))  # type: ignore[operator]
        if ticket_id in csat:
            arm.samples["csat"].append(float(csat[ticket_id]))
    return figures


SHARES = (  # in the admin template's column order
    ExperimentMetric.AUTO_SENT,
    ExperimentMetric.ACCEPTED,
    ExperimentMetric.REJECTED,
    "agent_sent_unchanged",
    ExperimentMetric.THUMBS_UP,
    "reopened",
)
MEANS = ("edit_ratio", "csat", "cost_usd")


def _arm_report(arm: ExperimentArm, figures: ArmFigures) -> dict:
    shares = {}
    for metric in SHARES:
        successes, trials = figures.counts.get(metric, [0, 0])
        low, high = wilson(successes, trials)
        shares[str(metric)] = {
            "share": round(successes / trials, 4) if trials else None,
            "low": round(low, 4),
            "high": round(high, 4),
            "successes": successes,
            "of": trials,
        }
    latency = figures.samples.get("latency_ms", [])
    return {
        "id": arm.pk,
        "name": arm.name,
        "control": arm.is_control,
        "runs": arm.changes(),
        "prompt_version": arm.prompt_version,
        "model_alias": arm.model_alias or None,
        "auto_send_threshold": arm.auto_send_threshold,
        "weight": arm.weight,
        "stopped": arm.stopped_reason or None,
        "drafts": figures.drafts,
        "tickets": len(figures.tickets),
        "shares": shares,
        "means": {metric: _mean_interval(figures.samples.get(metric, [])) for metric in MEANS},
        "latency_ms": {
            f"p{q}": round(float(np.percentile(latency, q)), 1) if latency else None
            for q in (50, 95, 99)
        },
    }


def _comparisons(experiment: Experiment, reports: list[dict], figures: dict) -> list[dict]:
    control = next(r for r in reports if r["control"])
    metric = experiment.primary_metric
    others = [r for r in reports if not r["control"]]
    confidence = 1 - experiment.alpha / max(len(others), 1)
    successes, trials = figures[control["id"]].counts.get(metric, [0, 0])
    out = []
    for report in others:
        arm_successes, arm_trials = figures[report["id"]].counts.get(metric, [0, 0])
        if not trials or not arm_trials:
            out.append({"arm": report["name"], "difference": None})
            continue
        difference, low, high = newcombe(
            (successes, trials), (arm_successes, arm_trials), confidence
        )
        better = high < 0 if metric in LOWER_IS_BETTER else low > 0
        worse = low > 0 if metric in LOWER_IS_BETTER else high < 0
        out.append({
            "arm": report["name"],
            "metric": metric,
            "difference": round(difference, 4),
            "low": round(low, 4),
            "high": round(high, 4),
            "confidence": round(confidence, 4),
            "verdict": "better" if better else "worse" if worse else "no difference shown",
        })  # fmt: skip
    return out


def stopping_rule(experiment: Experiment) -> str:
    arms = experiment.arms.count()
    return (
        f"fixed horizon: analysed once, when every live arm has {experiment.horizon_per_arm} "
        f"drafts (two-sided test of {experiment.primary_metric} from a baseline of "
        f"{experiment.baseline_rate:g}, smallest difference {experiment.minimum_effect:g}, "
        f"alpha {experiment.alpha:g} split over {max(arms - 1, 1)} comparison(s), power "
        f"{experiment.power:g}); no decision on figures before then"
    )


def experiment_report(experiment: Experiment) -> dict:
    """Everything about an experiment, as the API returns it."""
    arms = list(experiment.arms.all())
    figures = _arm_figures(arms)
    reports = [_arm_report(arm, figures[arm.pk]) for arm in arms]
    at_horizon = reached_horizon(experiment)
    comparisons = _comparisons(experiment, reports, figures)
    better = [c for c in comparisons if c.get("verdict") == "better"]
    if experiment.primary_metric in LOWER_IS_BETTER:
        better.sort(key=lambda c: c["difference"])
    else:
        better.sort(key=lambda c: -c["difference"])
    decided = at_horizon or experiment.status != ExperimentStatus.RUNNING
    return {
        "id": experiment.pk,
        "name": experiment.name,
        "hypothesis": experiment.hypothesis,
        "status": experiment.status,
        "primary_metric": experiment.primary_metric,
        "horizon_per_arm": experiment.horizon_per_arm,
        "stopping_rule": stopping_rule(experiment),
        "at_horizon": at_horizon,
        "started_at": experiment.started_at.isoformat(),
        "ended_at": experiment.ended_at.isoformat() if experiment.ended_at else None,
        "end_reason": experiment.end_reason or None,
        "winner": experiment.winner.name if experiment.winner else None,
        "arms": reports,
        "comparisons": comparisons,
        # Read once, at the horizon; before it the comparisons are provisional.
        "verdict": (
            None
            if not decided
            else {"winner": better[0]["arm"], "by": better[0]}
            if better and at_horizon
            else {"winner": None, "by": "no arm beat the control at the horizon"}
            if at_horizon
            else {"winner": None, "by": "ended before the horizon: no verdict"}
        ),
        "provisional": not decided,
    }


def reached_horizon(experiment: Experiment) -> bool:
    """Whether every live arm has its horizon's drafts (the unit `_arm_figures` counts)."""
    live = list(experiment.arms.filter(stopped_at__isnull=True).values_list("pk", flat=True))
    counts = Counter(
        Draft.objects.filter(
            experiment_arm_id__in=live, generation=1, evaluation=False
        ).values_list("experiment_arm_id", flat=True)
    )
    return bool(live) and all(counts[pk] >= experiment.horizon_per_arm for pk in live)


def experiments_close_due() -> list[str]:
    """Finish the running experiment whose live arms all reached the horizon, recording the
    verdict's winner (the beat task). Returns the names finished."""
    experiment = Experiment.objects.filter(status=ExperimentStatus.RUNNING).first()
    # A count each minute; the figures and their intervals only once the horizon is reached.
    if experiment is None or not reached_horizon(experiment):
        return []
    report = experiment_report(experiment)
    winner_name = report["verdict"]["winner"] if report["verdict"] else None
    winner = experiment.arms.filter(name=winner_name).first() if winner_name else None
    reason = (
        f"horizon reached; {winner_name} beat the control on {experiment.primary_metric}"
        if winner
        else "horizon reached; no arm beat the control"
    )
    ended = experiment_end(
        experiment=experiment,
        status=ExperimentStatus.FINISHED,
        reason=reason,
        winner_id=winner.pk if winner else None,
    )
    return [experiment.name] if ended else []


def experiment_stop(*, experiment: Experiment, reason: str) -> None:
    """Stop a running experiment before its horizon (e.g. an arm does harm). No verdict."""
    if not reason.strip():
        raise ValidationError("say why the experiment stops early", field="reason")
    if not experiment_end(experiment=experiment, status=ExperimentStatus.STOPPED, reason=reason):
        raise ConflictError(f"experiment {experiment.name} is {experiment.status}, not running")


def experiment_promote(
    *,
    experiment: Experiment,
    arm_name: str = "",
    override_reason: str = "",
    requested_by: str = "",
) -> list[str]:
    """Make the winner's configuration live, in one action, through the regression gate.

    Without `arm_name` the verdict's winner is promoted (refused when there is none yet or
    none at all). Naming another arm, or promoting before the horizon, needs
    `override_reason`. Returns what changed; ActivationRefusedError when the gate refuses.
    """
    experiments_close_due()
    experiment.refresh_from_db()
    if experiment.status == ExperimentStatus.PROMOTED:
        raise ConflictError(f"experiment {experiment.name} was promoted already")
    report = experiment_report(experiment)
    winner = (report["verdict"] or {}).get("winner")
    name = arm_name or winner
    if not name:
        why = (
            "it has not reached its horizon"
            if report["verdict"] is None
            else report["verdict"]["by"]
        )
        raise ConflictError(
            f"experiment {experiment.name} has no winner to promote: {why}; name an arm "
            "with a reason to promote it anyway"
        )
    arm = experiment.arms.filter(name=name).first()
    if arm is None:
        raise ValidationError(f"experiment {experiment.name} has no arm {name!r}", field="arm")
    if name != winner and not override_reason.strip():
        raise ConflictError(
            f"arm {name} is not the verdict's winner ({winner or 'none'}): give a reason to "
            "promote it anyway"
        )
    changed = experiment_arm_apply(
        arm=arm, override_reason=override_reason, requested_by=requested_by
    )
    if override_reason.strip():
        Experiment.objects.filter(pk=experiment.pk).update(
            end_reason=f"{name} promoted by {requested_by or 'an admin'} against the verdict "
            f"({winner or 'none'}): {override_reason}"[:500],
            ended_at=experiment.ended_at or timezone.now(),
        )
    return changed


def experiment_by_reference(reference: str) -> Experiment:
    """An experiment by id or name."""
    found = (
        Experiment.objects.filter(pk=int(reference)).first()
        if reference.isdigit()
        else Experiment.objects.filter(name=reference).first()
    )
    if found is None:
        raise ValidationError(f"no experiment {reference!r}", field="experiment")
    return found
