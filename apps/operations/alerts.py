"""Alerts before money or quality runs out: checked by beat every ALERT_CHECK_SECONDS, sent
by email (ALERT_EMAILS) and to webhook subscribers of `alert.fired` (a Slack incoming webhook
is a subscription with the slack payload format).

Each check names what is wrong now as findings with a stable key ("budget:daily:80"). A key
that starts firing is sent once; while it keeps firing nothing more is sent (one incident,
one alert); when it stops it is resolved. A key that fires again within ALERT_COOLDOWN_MINUTES
of its last send is recorded but not sent (a flapping condition). A check that fails is
logged and resolves nothing; the others still run. A channel that is down fails only its own
delivery: webhooks are retried by their outbox, an email by its task, and the next alert is
tried regardless.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.core.workers import celery_queue_lengths
from apps.evaluation.recalibration import auto_send_precision
from apps.evaluation.selectors import eval_run_latest_nightly
from apps.llm.circuit import circuit_states
from apps.llm.selectors import llm_call_outcomes, llm_spend
from apps.operations.models import Alert, AlertState
from apps.tickets.selectors import pipeline_outcomes
from apps.webhooks.models import EventType
from apps.webhooks.services import webhook_event_emit

logger = logging.getLogger(__name__)

EMAIL_TASK = "operations.alert_email"


@dataclass(frozen=True)
class Finding:
    key: str
    kind: str
    message: str
    severity: str = "warning"
    value: dict = field(default_factory=dict)


def _budget(now: datetime) -> list[Finding]:
    spend = llm_spend(now=now)
    findings = []
    for period, spent, limit in (
        ("daily", spend.today_usd, settings.LLM_BUDGET_DAILY_USD),
        ("monthly", spend.month_usd, settings.LLM_BUDGET_MONTHLY_USD),
    ):
        if limit <= 0:
            continue
        share = float(spent) / limit
        for level in settings.ALERT_BUDGET_LEVELS:
            if share >= level:
                percent = round(level * 100)
                what = "is spent: every customer is handed to a person" if level >= 1 else "used"
                findings.append(
                    Finding(
                        key=f"budget:{period}:{percent}",
                        kind="budget",
                        severity="critical" if level >= 1 else "warning",
                        message=(
                            f"{percent}% of the {period} LLM budget {what} "
                            f"({float(spent):.4f} of {limit:.2f} USD)"
                        ),
                        value={"period": period, "spent_usd": float(spent), "limit_usd": limit},
                    )
                )
    return findings


def _precision(now: datetime) -> list[Finding] | None:
    hours = settings.ALERT_PRECISION_WINDOW_HOURS
    right, judged = auto_send_precision(since=now - timedelta(hours=hours))
    target = settings.CALIBRATION_TARGET_PRECISION
    if judged < settings.ALERT_PRECISION_MIN_JUDGED:
        return None  # too few verdicts to tell: a firing alert stays as it is
    if right / judged >= target:
        return []
    return [
        Finding(
            key="precision:auto_send",
            kind="precision",
            severity="critical",
            message=(
                f"auto-send precision {right / judged:.1%} over the last {hours} h "
                f"({right} of {judged} judged replies right) is below the target {target:.0%}"
            ),
            value={"right": right, "judged": judged, "target": target},
        )
    ]


def _circuits(now: datetime) -> list[Finding]:
    return [
        Finding(
            key=f"circuit:{alias}",
            kind="circuit",
            severity="critical",
            message=f"model alias {alias!r}: its circuit is open after repeated failures",
            value={"alias": alias, "failures": state.failures},
        )
        for alias, state in sorted(circuit_states(list(settings.LLM_DEPLOYMENTS)).items())
        if state.state == "open"
    ]


def _error_rates(now: datetime) -> list[Finding]:
    minutes = settings.ALERT_ERROR_WINDOW_MINUTES
    since = now - timedelta(minutes=minutes)
    findings = []
    for name, (failed, total) in (
        ("pipeline", pipeline_outcomes(since=since)),
        ("model_calls", llm_call_outcomes(since=since)),
    ):
        if total >= settings.ALERT_ERROR_MIN_EVENTS and failed / total > settings.ALERT_ERROR_RATE:
            findings.append(
                Finding(
                    key=f"errors:{name}",
                    kind="errors",
                    message=(
                        f"{failed} of {total} {name.replace('_', ' ')} failed in the last "
                        f"{minutes} min ({failed / total:.1%}, threshold "
                        f"{settings.ALERT_ERROR_RATE:.0%})"
                    ),
                    value={"failed": failed, "total": total},
                )
            )
    return findings


def _backlog(now: datetime) -> list[Finding]:
    limit = settings.ALERT_QUEUE_BACKLOG
    return [
        Finding(
            key=f"backlog:{queue}",
            kind="backlog",
            message=f"{length} tasks wait in the {queue!r} queue (threshold {limit})",
            value={"queue": queue, "length": length},
        )
        for queue, length in celery_queue_lengths().items()
        if length > limit
    ]


def _nightly_eval(now: datetime) -> list[Finding]:
    run = eval_run_latest_nightly()
    if run is None or run.status != "failed":
        return []
    return [
        Finding(
            key=f"eval:nightly:{run.pk}",
            kind="eval",
            message=f"the nightly eval run #{run.pk} on {run.gold_set} failed: {run.error[:300]}",
            value={"run_id": run.pk},
        )
    ]


# A check returns what fires now, or None when it cannot tell (its alerts stay as they are).
CHECKS: dict[str, Callable[[datetime], list[Finding] | None]] = {
    "budget": _budget,
    "precision": _precision,
    "circuit": _circuits,
    "errors": _error_rates,
    "backlog": _backlog,
    "eval": _nightly_eval,
}


@dataclass
class CheckReport:
    sent: list[str] = field(default_factory=list)
    suppressed: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    failed_checks: list[str] = field(default_factory=list)


def alerts_check(*, now: datetime | None = None) -> CheckReport:
    """Run every check, fire what started, resolve what stopped. Idempotent: two runs at
    once agree through the alert rows' locks (a key is sent once)."""
    now = now or timezone.now()
    report = CheckReport()
    for kind, check in CHECKS.items():
        try:
            findings = check(now)
        except Exception:
            logger.exception("alert check %s failed", kind)
            report.failed_checks.append(kind)
            continue
        if findings is None:
            continue
        for finding in findings:
            outcome = _fire(finding, now)
            if outcome == "sent":
                report.sent.append(finding.key)
            elif outcome == "suppressed":
                report.suppressed.append(finding.key)
        firing = {finding.key for finding in findings}
        stopped = Alert.objects.filter(kind=kind, state=AlertState.FIRING).exclude(key__in=firing)
        report.resolved += list(stopped.values_list("key", flat=True))
        stopped.update(state=AlertState.RESOLVED, resolved_at=now)
    return report


@transaction.atomic
def _fire(finding: Finding, now: datetime) -> str:
    """'sent', 'suppressed' (within the cooldown) or 'ongoing' (already firing)."""
    alert, created = Alert.objects.select_for_update().get_or_create(
        key=finding.key,
        defaults={
            "kind": finding.kind,
            "severity": finding.severity,
            "state": AlertState.FIRING,
            "message": finding.message,
            "value": finding.value,
            "fired_at": now,
        },
    )
    cooldown = timedelta(minutes=settings.ALERT_COOLDOWN_MINUTES)
    if not created and alert.state == AlertState.FIRING:
        # Already sent for this incident, or held back by the cooldown that has not ended:
        # nothing to send. A held-back incident still firing once the cooldown ended is.
        sent_for_it = alert.last_sent_at is not None and alert.last_sent_at >= alert.fired_at
        if sent_for_it or (alert.last_sent_at and now - alert.last_sent_at < cooldown):
            Alert.objects.filter(pk=alert.pk).update(message=finding.message, value=finding.value)
            return "ongoing"
        alert.message, alert.value = finding.message, finding.value
    elif not created:
        alert.state, alert.fired_at, alert.resolved_at = AlertState.FIRING, now, None
        alert.message, alert.value, alert.severity = (
            finding.message,
            finding.value,
            finding.severity,
        )
    if alert.last_sent_at is not None and now - alert.last_sent_at < cooldown:
        alert.suppressed += 1
        alert.save()
        return "suppressed"
    alert.sends += 1
    alert.last_sent_at = now
    alert.save()
    _send(alert)
    return "sent"


def _summary(alert: Alert) -> str:
    return f"[Deskpilot {alert.severity}] {alert.message}"


def _send(alert: Alert) -> None:
    """To every alert.fired subscriber (outbox, in this transaction) and, after commit, by
    email to ALERT_EMAILS."""
    webhook_event_emit(
        event_type=EventType.ALERT_FIRED,
        data={
            "alert": {
                "key": alert.key,
                "kind": alert.kind,
                "severity": alert.severity,
                "message": alert.message,
                "value": alert.value,
                "fired_at": alert.fired_at.isoformat(),
            }
        },
        summary=_summary(alert),
    )
    if settings.ALERT_EMAILS:
        transaction.on_commit(partial(_email_publish, alert.pk, _summary(alert)), robust=True)


def _email_publish(alert_id: int, subject: str) -> None:
    try:
        current_app.send_task(
            EMAIL_TASK, kwargs={"alert_id": alert_id, "subject": subject}, queue="default"
        )
    except Exception as error:
        logger.warning("alert %s email not queued: %s", alert_id, error)
        Alert.objects.filter(pk=alert_id).update(last_error=f"email not queued: {error}"[:1000])


def alert_email_send(*, alert_id: int, subject: str) -> None:
    """Email one alert to ALERT_EMAILS; raises on an SMTP failure (the task retries)."""
    from django.core.mail import send_mail

    alert = Alert.objects.filter(pk=alert_id).first()
    if alert is None:
        return
    body = (
        f"{alert.message}\n\nAlert: {alert.key} ({alert.severity}), fired at "
        f"{alert.fired_at.isoformat()}.\nFigures: {alert.value}\n\n"
        "Alerts are listed in the admin under Operations > Alerts."
    )
    send_mail(subject[:200], body, None, settings.ALERT_EMAILS)
