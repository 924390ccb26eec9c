from celery import shared_task

from apps.webhooks.services import webhook_deliveries_sweep, webhook_delivery_attempt


@shared_task(name="webhooks.delivery_attempt", ignore_result=True)
def delivery_attempt(delivery_id: int) -> str | None:
    """Send one webhook delivery if it is due (idempotent: claimed by compare-and-set)."""
    return webhook_delivery_attempt(delivery_id=delivery_id)


@shared_task(name="webhooks.deliveries_sweep", ignore_result=True)
def deliveries_sweep() -> int:
    """Beat: re-queue deliveries whose task or worker was lost."""
    return webhook_deliveries_sweep()
