from celery import shared_task

from apps.tickets.email_inbound import imap_poll
from apps.tickets.email_outbound import outbound_emails_sweep
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


@shared_task(name="tickets.outbound_emails_sweep")
def outbound_emails_sweep_task() -> int:
    """Send the emailed replies still due (beat, every minute): a send the mail server
    refused, or one whose sender died before recording it."""
    return outbound_emails_sweep()
