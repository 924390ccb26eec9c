"""When runs start by themselves: nightly on every gold set, and when what is active changed."""

from __future__ import annotations

from apps.evaluation.models import EvalRun, GoldSet, RunStatus
from apps.evaluation.runs import configuration, eval_run_create

# What makes two configurations different for the purpose of re-running.
VERSION_KEYS = (
    "classifier_version_id",
    "prompt_version",
    "calibration_version",
    "knowledge_version",
)


def _versions(config: dict) -> tuple:
    return tuple(config.get(key) for key in VERSION_KEYS)


def eval_runs_start_all(*, label: str) -> list[int]:
    """A run of the active configuration on every gold set with items; their ids."""
    return [
        eval_run_create(gold_set=gold_set, label=label).pk
        for gold_set in GoldSet.objects.filter(items__isnull=False).distinct().order_by("name")
    ]


def eval_runs_start_for_changes() -> list[int]:
    """A run on each gold set whose latest run measured other versions than the active
    ones and none is under way; their ids."""
    active = _versions(configuration({}))
    started = []
    for gold_set in GoldSet.objects.filter(items__isnull=False).distinct().order_by("name"):
        runs = EvalRun.objects.filter(gold_set=gold_set, config__against={})
        if runs.filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).exists():
            continue
        latest = runs.order_by("-id").first()
        if latest is None or _versions(latest.config) != active:
            started.append(eval_run_create(gold_set=gold_set, label="new version").pk)
    return started
