from celery import shared_task

from apps.webhooks.services import webhook_deliveries_sweep, webhook_delivery_attempt


@shared_task(name="webhooks.delivery_attempt", ignore_result=True)
def delivery_attempt(delivery_ids: list[int]) -> list[str | None]:
    """Send these webhook deliveries, each if it is due (idempotent: claimed by
    compare-and-set)."""
    return [webhook_delivery_attempt(delivery_id=delivery_id) for delivery_id in delivery_ids]


@shared_task(name="webhooks.deliveries_sweep", ignore_result=True)
def deliveries_sweep() -> int:
    """Beat: re-queue deliveries whose task or worker was lost."""
    return webhook_deliveries_sweep()
