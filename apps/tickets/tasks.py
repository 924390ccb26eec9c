from celery import shared_task

from apps.tickets.email_inbound import imap_poll
from apps.tickets.services import message_pipeline_sweep


@shared_task(name="tickets.pipeline_sweep")
def pipeline_sweep_task() -> int:
    """Publish again the pipeline task of messages stuck before the pipeline (beat, every
    minute). Idempotent: the pipeline task is."""
    return message_pipeline_sweep()


@shared_task(name="tickets.imap_poll")
def imap_poll_task() -> int:
    """Fetch unseen mail from the configured IMAP folder (beat, only when IMAP_HOST is set)."""
    return imap_poll()
