from celery import shared_task

from apps.triage.services import (
    classifier_retrain_if_due,
    classifier_train_from_database,
    classifier_versions_reclaim,
)


@shared_task(name="triage.classifier_train_from_database", acks_late=True, queue="ingest")
def classifier_train_from_database_task(version_id: int, activate: bool = False) -> None:
    """Train the pending classifier version `version_id` on the stored examples.

    Idempotent: a version that is gone or already trained/failed is left alone.
    """
    classifier_train_from_database(version_id=version_id, activate=activate)


@shared_task(name="triage.classifier_versions_reclaim")
def classifier_versions_reclaim_task() -> int:
    """Periodic (beat): fail the versions whose training was lost."""
    return classifier_versions_reclaim()


@shared_task(name="triage.classifier_retrain_if_due")
def classifier_retrain_if_due_task() -> int | None:
    """Periodic (beat): retrain once enough intent corrections accumulated; the new
    version goes live only through the regression gate. Returns the queued version's id."""
    version = classifier_retrain_if_due()
    return version.id if version is not None else None
