import smtplib

from celery import shared_task

from apps.operations.alerts import alert_email_send, alerts_check
from apps.operations.rollups import figures_refresh


@shared_task(name="operations.alerts_check", ignore_result=True)
def alerts_check_task() -> dict:
    """Beat: fire alerts that started, resolve those that stopped (see apps.operations.alerts)."""
    report = alerts_check()
    return {"sent": report.sent, "resolved": report.resolved, "failed": report.failed_checks}


@shared_task(
    name="operations.alert_email",
    ignore_result=True,
    autoretry_for=(smtplib.SMTPException, OSError),
    retry_backoff=30,
    retry_backoff_max=1800,
    retry_jitter=True,
    max_retries=6,
)
def alert_email(alert_id: int, subject: str) -> None:
    """Email one alert; an SMTP server that is down is retried with backoff, then given up."""
    alert_email_send(alert_id=alert_id, subject=subject)


@shared_task(name="operations.figures_refresh", ignore_result=True)
def figures_refresh_task(days: int = 2) -> int:
    """Beat: the insights page's daily figures of the last `days` days, recomputed."""
    return figures_refresh(days=days)
