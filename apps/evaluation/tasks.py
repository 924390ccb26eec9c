from celery import shared_task

from apps.evaluation import candidates, experiments, gaps, recalibration, runs, schedule


@shared_task(name=runs.RUN_TASK, acks_late=True, reject_on_worker_lost=True)
def eval_batch_task(run_id: int, item_ids: list[int]) -> int:
    """Evaluate one batch of a run's items (eval queue). Idempotent: redelivered after a
    killed worker, it does only the items still without a result."""
    return runs.eval_batch_run(run_id=run_id, item_ids=item_ids)


@shared_task(name="evaluation.runs_sweep")
def eval_runs_sweep_task() -> dict[str, int]:
    """Re-publish stalled runs' missing items, or fail them (beat)."""
    return runs.eval_runs_sweep()


@shared_task(name="evaluation.nightly")
def eval_nightly_task() -> list[int]:
    """Run the active configuration on every gold set (beat, nightly)."""
    return schedule.eval_runs_start_all(label="nightly")


@shared_task(name="evaluation.on_new_version")
def eval_on_new_version_task() -> list[int]:
    """Run every gold set whose latest run measured another configuration than the one now
    active (a new classifier, prompt, calibration or knowledge base) (beat)."""
    return schedule.eval_runs_start_for_changes()


@shared_task(name="evaluation.candidates_collect")
def gold_candidates_collect_task() -> int:
    """Gold-set candidates from the drafts agents sent since the last collection (beat)."""
    return candidates.gold_candidates_collect()


@shared_task(name="evaluation.experiments_close_due")
def experiments_close_due_task() -> list[str]:
    """Finish the running A/B experiment once every live arm reached its horizon (beat)."""
    return experiments.experiments_close_due()


@shared_task(name="evaluation.knowledge_gaps_refresh")
def knowledge_gaps_refresh_task() -> dict[str, int]:
    """Re-cluster the questions agents answered with no article behind them (beat)."""
    return gaps.knowledge_gaps_refresh()


@shared_task(name="evaluation.calibration_refit_if_due")
def calibration_refit_task() -> dict | None:
    """Refit the calibration from live outcomes when the last refit is old enough (beat)."""
    refit = recalibration.calibration_refit_if_due()
    if refit is None:
        return None
    return {"labelled": refit.labelled, "right": refit.right, "activated": refit.activated,
            "refused": refit.refused, "skipped": refit.skipped,
            "version": refit.calibration.version if refit.calibration else None}  # fmt: skip
