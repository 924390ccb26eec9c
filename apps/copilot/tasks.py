from celery import shared_task

from apps.copilot.services import pipeline_run


@shared_task(name="copilot.pipeline_run")
def pipeline_run_task(message_id: int) -> bool:
    """Run the copilot pipeline for one customer message (scheduled by tickets, by name)."""
    return pipeline_run(message_id=message_id)
