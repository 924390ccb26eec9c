from celery import shared_task

from apps.privacy.services import retention_purge


@shared_task(name="privacy.retention_purge")
def retention_purge_task() -> dict[str, int]:
    """Apply the retention periods (beat); returns what was purged. Idempotent."""
    record = retention_purge()
    return record.counts if record is not None else {}
