from celery import shared_task

from apps.feedback.drafts import flagged_drafts_collect


@shared_task(name="feedback.flagged_drafts_collect")
def flagged_drafts_collect_task() -> int:
    """Flag recent low-margin auto-sent drafts and guard verdicts (idempotent; beat runs it)."""
    return flagged_drafts_collect()
