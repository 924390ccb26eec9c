"""Alerts: budget, precision, circuits, errors, a failed nightly eval; sent once per
incident to webhook subscribers of alert.fired and by email, with a cooldown."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from apps.llm.circuit import circuit_record_failure
from apps.llm.models import LLMCall
from apps.operations import alerts
from apps.operations.alerts import alert_email_send, alerts_check
from apps.operations.models import Alert, AlertState
from apps.webhooks.models import WebhookDelivery
from apps.webhooks.services import webhook_delivery_attempt, webhook_subscription_create
from tests.webhooks.receiver import signature_valid


def _spend(usd: str, *, status: str = LLMCall.Status.SUCCEEDED) -> None:
    LLMCall.objects.create(
        purpose="draft", alias="draft-fast", model="openai/gpt-4o-mini", status=status,
        cost_usd=Decimal(usd), input_tokens=100, output_tokens=50,
        error_type="Timeout" if status == LLMCall.Status.FAILED else "",
    )  # fmt: skip


def _deliver() -> None:
    for pk in WebhookDelivery.objects.filter(status="pending").values_list("pk", flat=True):
        webhook_delivery_attempt(delivery_id=pk)


@pytest.mark.django_db
def test_a_budget_crossing_80_percent_alerts_a_webhook_once_not_once_per_ticket(
    receiver,
    settings,
):
    # given: an alert subscriber, and a daily budget just above the spend so far
    subscription = webhook_subscription_create(url=receiver.url, event_types=["alert.fired"])
    _spend("0.90")
    settings.LLM_BUDGET_DAILY_USD = 1.00
    settings.LLM_BUDGET_MONTHLY_USD = 0.0
    # when: the check runs, and again after every further ticket's spend
    first = alerts_check()
    for _ in range(5):
        _spend("0.01")
        alerts_check()
        _deliver()
    # then: one alert reached the receiver, signed, with the figures
    assert first.sent == ["budget:daily:80"]
    assert len(receiver.received) == 1
    alert = receiver.received[0].json["data"]["alert"]
    assert (alert["key"], alert["severity"]) == ("budget:daily:80", "warning")
    assert alert["value"] == {"period": "daily", "spent_usd": 0.9, "limit_usd": 1.0}
    assert signature_valid(receiver.received[0], subscription.secret)
    # when: the budget is spent
    _spend("0.10")
    spent = alerts_check()
    _deliver()
    # then: the 100% alert, once, critical
    assert spent.sent == ["budget:daily:100"]
    assert [r.json["data"]["alert"]["key"] for r in receiver.received] == [
        "budget:daily:80",
        "budget:daily:100",
    ]
    assert receiver.received[1].json["data"]["alert"]["severity"] == "critical"
    # when: the next day starts
    tomorrow = alerts_check(now=timezone.now() + timedelta(days=1))
    # then: both are resolved
    assert sorted(tomorrow.resolved) == ["budget:daily:100", "budget:daily:80"]
    assert set(Alert.objects.values_list("state", flat=True)) == {AlertState.RESOLVED}


@pytest.mark.django_db
def test_an_alert_firing_again_within_the_cooldown_is_recorded_not_sent(settings):
    # given: a budget alert that fired and resolved
    settings.ALERT_COOLDOWN_MINUTES = 60
    settings.LLM_BUDGET_MONTHLY_USD = 0.0
    settings.LLM_BUDGET_DAILY_USD = 1.0
    _spend("0.85")
    # (every check within today, whatever the time the suite runs: 90 minutes after 22:30
    # would be tomorrow, whose spend is nothing)
    start = timezone.now().replace(hour=1, minute=0, second=0, microsecond=0)
    assert alerts_check(now=start).sent == ["budget:daily:80"]
    settings.LLM_BUDGET_DAILY_USD = 10.0
    assert alerts_check(now=start + timedelta(minutes=1)).resolved == ["budget:daily:80"]
    # when: it fires again ten minutes later, then after the cooldown
    settings.LLM_BUDGET_DAILY_USD = 1.0
    again = alerts_check(now=start + timedelta(minutes=10))
    settings.LLM_BUDGET_DAILY_USD = 10.0
    alerts_check(now=start + timedelta(minutes=11))
    settings.LLM_BUDGET_DAILY_USD = 1.0
    later = alerts_check(now=start + timedelta(minutes=90))
    # then
    assert (again.sent, again.suppressed) == ([], ["budget:daily:80"])
    assert later.sent == ["budget:daily:80"]
    row = Alert.objects.get(key="budget:daily:80")
    assert (row.sends, row.suppressed, row.state) == (2, 1, AlertState.FIRING)


@pytest.mark.django_db
def test_an_open_circuit_and_failing_model_calls_alert(settings):
    # given: the draft alias failed past its threshold, and most calls failed
    settings.LLM_BUDGET_DAILY_USD = settings.LLM_BUDGET_MONTHLY_USD = 0.0
    settings.ALERT_ERROR_MIN_EVENTS = 10
    for _ in range(settings.LLM_CIRCUIT_FAILURE_THRESHOLD):
        circuit_record_failure("draft-fast")
    for index in range(12):
        _spend("0", status=LLMCall.Status.FAILED if index < 4 else LLMCall.Status.SUCCEEDED)
    # when
    report = alerts_check()
    # then
    assert sorted(report.sent) == ["circuit:draft-fast", "errors:model_calls"]
    assert "4 of 12 model calls failed" in Alert.objects.get(key="errors:model_calls").message


@pytest.mark.django_db
def test_a_failing_check_resolves_nothing_and_stops_no_other_check(settings, monkeypatch):
    # given: a firing budget alert, then the budget check breaks
    settings.LLM_BUDGET_MONTHLY_USD = 0.0
    settings.LLM_BUDGET_DAILY_USD = 1.0
    _spend("0.85")
    alerts_check()

    def broken(now):  # type: ignore[no-untyped-def]
        raise RuntimeError("database hiccup")

    monkeypatch.setitem(alerts.CHECKS, "budget", broken)
    for _ in range(settings.LLM_CIRCUIT_FAILURE_THRESHOLD):
        circuit_record_failure("judge")
    # when
    report = alerts_check()
    # then
    assert report.failed_checks == ["budget"]
    assert report.sent == ["circuit:judge"]
    assert Alert.objects.get(key="budget:daily:80").state == AlertState.FIRING


@pytest.mark.django_db
def test_an_alert_is_emailed_to_the_alert_addresses(settings):
    # given
    settings.ALERT_EMAILS = ["oncall@example.com"]
    settings.LLM_BUDGET_MONTHLY_USD = 0.0
    settings.LLM_BUDGET_DAILY_USD = 1.0
    _spend("1.00")
    alerts_check()
    alert = Alert.objects.get(key="budget:daily:100")
    # when: the email task runs
    alert_email_send(alert_id=alert.pk, subject=f"[Deskpilot critical] {alert.message}")
    # then
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["oncall@example.com"]
    assert "100% of the daily LLM budget is spent" in mail.outbox[0].subject


@pytest.mark.django_db
def test_an_incident_held_back_by_the_cooldown_is_sent_once_the_cooldown_ends(settings):
    # given: sent, resolved, then firing again within the cooldown (held back)
    settings.ALERT_COOLDOWN_MINUTES = 60
    settings.LLM_BUDGET_MONTHLY_USD = 0.0
    settings.LLM_BUDGET_DAILY_USD = 1.0
    _spend("1.00")
    start = timezone.now().replace(hour=1, minute=0, second=0, microsecond=0)  # all today
    assert "budget:daily:100" in alerts_check(now=start).sent
    settings.LLM_BUDGET_DAILY_USD = 100.0
    alerts_check(now=start + timedelta(minutes=5))
    settings.LLM_BUDGET_DAILY_USD = 1.0
    assert "budget:daily:100" in alerts_check(now=start + timedelta(minutes=10)).suppressed
    # when: it is still firing during and after the cooldown
    during = alerts_check(now=start + timedelta(minutes=30))
    after = alerts_check(now=start + timedelta(minutes=61))
    again = alerts_check(now=start + timedelta(minutes=62))
    # then: sent once the cooldown ended, and only once
    assert "budget:daily:100" not in during.sent
    assert "budget:daily:100" in after.sent
    assert "budget:daily:100" not in again.sent
