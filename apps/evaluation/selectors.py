"""Reads of evaluation results for other apps."""

from __future__ import annotations

from apps.evaluation.models import EvalRun, RunStatus

# The figures of a run that say how good the configuration is (all shares or means, 0..1).
SCORES = (
    "intent_accuracy", "article_hit1", "article_hit5", "article_mrr", "decision_right",
    "auto_send_share", "auto_send_precision", "faithfulness", "relevance",
)  # fmt: skip


def eval_scores_latest() -> dict[str, dict[str, float]]:
    """Per gold set, the scores of its latest succeeded run of the configuration in force
    (a gate's runs of a candidate are not it)."""
    runs = (
        EvalRun.objects.filter(status=RunStatus.SUCCEEDED, config__against={})
        .order_by("gold_set_id", "-finished_at", "-id")
        .distinct("gold_set_id")
        .select_related("gold_set")
    )
    return {
        run.gold_set.name: {
            name: float(run.metrics[name])
            for name in SCORES
            if isinstance(run.metrics.get(name), int | float)
        }
        for run in runs
    }


def eval_run_latest_nightly() -> EvalRun | None:
    """The newest finished nightly run (alerts read whether it failed)."""
    return (
        EvalRun.objects.filter(label="nightly", status__in=[RunStatus.SUCCEEDED, RunStatus.FAILED])
        .order_by("-finished_at", "-id")
        .first()
    )


def eval_runs_latest(*, limit: int = 10) -> list[EvalRun]:
    return list(EvalRun.objects.select_related("gold_set").order_by("-id")[:limit])
