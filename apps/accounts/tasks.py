from celery import shared_task

from apps.accounts.services import idempotency_records_purge


@shared_task(name="accounts.idempotency_records_purge")
def idempotency_records_purge_task() -> int:
    """Delete expired Idempotency-Key records (beat, hourly). Idempotent."""
    return idempotency_records_purge()
