"""Outbound webhooks: subscribed through the API, written with the event (an outbox), sent
signed, retried with backoff, given up with the reason, re-sent on request."""

from __future__ import annotations

import pytest
from django.db import transaction

from apps.tickets.models import Channel
from apps.tickets.services import Actor, customer_resolve, ticket_create, ticket_handoff
from apps.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from apps.webhooks.services import (
    webhook_deliveries_erase,
    webhook_deliveries_sweep,
    webhook_delivery_attempt,
    webhook_subscription_create,
)
from tests.webhooks.receiver import signature_valid

LOOPBACK, PUBLIC, OPENED = "http://127.0.0.1:9/x", "https://93.184.215.14/x", ["ticket.created"]


def _ticket(body: str = "Where is my parcel?"):  # type: ignore[no-untyped-def]
    customer = customer_resolve(email="ada@example.com", name="Ada")
    return ticket_create(
        customer=customer, body=body, channel=Channel.API, actor=Actor.for_customer(customer)
    )


def _deliver_all() -> list[str | None]:
    return [
        webhook_delivery_attempt(delivery_id=pk)
        for pk in WebhookDelivery.objects.order_by("id").values_list("pk", flat=True)
    ]


@pytest.mark.django_db
def test_a_subscription_made_through_the_api_receives_signed_events(api_key_client, receiver):
    # given: a subscription to tickets opened and handed off, made through the API
    client = api_key_client()
    response = client.post(
        "/api/v1/webhooks",
        {"url": receiver.url, "event_types": ["ticket.created", "ticket.handed_off"]},
        format="json",
    )
    assert response.status_code == 201, response.json()
    created = response.json()
    assert created["secret"].startswith("whsec_")
    assert "secret" not in client.get(f"/api/v1/webhooks/{created['id']}").json()
    # when: a ticket is opened, then handed off
    ticket, message = _ticket()
    ticket_handoff(ticket=ticket, actor=Actor.copilot(), reason="the customer asked for a human")
    statuses = _deliver_all()
    # then: one delivery per subscribed event, each signed with the subscription's secret
    assert statuses == ["succeeded", "succeeded"]
    opened, handed = receiver.of_type("ticket.created"), receiver.of_type("ticket.handed_off")
    assert len(opened) == 1 and len(handed) == 1
    assert opened[0].json["data"]["ticket"]["id"] == ticket.pk
    assert opened[0].json["data"]["message_id"] == message.pk
    assert handed[0].json["data"]["reason"] == "the customer asked for a human"
    assert all(signature_valid(r, created["secret"]) for r in receiver.received)
    assert not signature_valid(opened[0], "whsec_another")
    tampered = type(opened[0])(opened[0].path, opened[0].headers, opened[0].body + b" ")
    assert not signature_valid(tampered, created["secret"])
    assert opened[0].headers["Deskpilot-Event-Id"] == opened[0].json["id"]
    # and: the delivery log says so
    log = client.get(f"/api/v1/webhooks/{created['id']}/deliveries").json()
    assert {(d["event_type"], d["status"], d["response_status"]) for d in log} == {
        ("ticket.created", "succeeded", 200),
        ("ticket.handed_off", "succeeded", 200),
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        ({"url": LOOPBACK, "event_types": OPENED}, "url", "WEBHOOK_ALLOWED_NETWORKS"),
        ({"url": "ftp://example.com/x", "event_types": OPENED}, "url", "http(s)"),
        ({"url": PUBLIC, "event_types": ["ticket.eaten"]}, "event_types", "not a valid choice"),
        ({"url": PUBLIC, "event_types": []}, "event_types", "at least 1"),
        ({"url": PUBLIC}, "event_types", "required"),
    ],
)  # fmt: skip
def test_a_bad_subscription_is_refused_and_nothing_is_stored(
    api_key_client, settings, payload, field, words
):
    # given
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    # when
    response = api_key_client().post("/api/v1/webhooks", payload, format="json")
    # then
    assert response.status_code == 400
    error = response.json()["error"]
    said = " ".join(m for name, ms in error["fields"].items() if name.startswith(field) for m in ms)
    assert words in said + error["message"]
    assert not WebhookSubscription.objects.exists()


@pytest.mark.django_db
def test_a_read_only_key_cannot_subscribe(api_key_client, receiver):
    response = api_key_client(scopes=("read",)).post(
        "/api/v1/webhooks", {"url": receiver.url, "event_types": ["ticket.created"]}, format="json"
    )
    assert response.status_code == 403
    assert not WebhookSubscription.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_ticket_sends_nothing(receiver):
    # given
    webhook_subscription_create(url=receiver.url, event_types=["ticket.created"])
    # when
    with pytest.raises(RuntimeError), transaction.atomic():
        _ticket()
        raise RuntimeError("the request failed after the ticket was written")
    # then
    assert not WebhookDelivery.objects.exists()


@pytest.mark.django_db
def test_a_failing_target_is_retried_with_backoff_then_given_up_with_the_reason(receiver, settings):
    # given: a target that answers 500
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    settings.WEBHOOK_RETRY_BASE_SECONDS = 10.0
    receiver.status = 500
    webhook_subscription_create(url=receiver.url, event_types=["ticket.created"])
    _ticket()
    delivery = WebhookDelivery.objects.get()
    # when: the first try fails
    assert webhook_delivery_attempt(delivery_id=delivery.pk) == "pending"
    delivery.refresh_from_db()
    # then: it waits (about 10 s, jittered) before the next, and is not sent before its time
    wait = (delivery.next_attempt_at - delivery.last_attempt_at).total_seconds()
    assert 7.5 <= wait <= 12.5
    assert (delivery.attempts, delivery.last_error, delivery.response_status) == (
        1,
        "HTTP 500",
        500,
    )
    assert webhook_delivery_attempt(delivery_id=delivery.pk) is None
    # when: its time comes, twice more
    for expected_wait in (20, None):
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            next_attempt_at=delivery.last_attempt_at
        )
        status = webhook_delivery_attempt(delivery_id=delivery.pk)
        delivery.refresh_from_db()
        if expected_wait:
            assert status == "pending"
            wait = (delivery.next_attempt_at - delivery.last_attempt_at).total_seconds()
            assert 0.8 * expected_wait <= wait <= 1.2 * expected_wait
    # then: given up after three tries, with the reason kept
    assert status == "gave_up"
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.GAVE_UP, 3)
    assert delivery.last_error == "gave up: HTTP 500"
    assert len(receiver.received) == 3


@pytest.mark.django_db
def test_a_target_that_hangs_or_redirects_to_a_private_address_is_not_followed(receiver, settings):
    # given
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.5
    webhook_subscription_create(url=receiver.url, event_types=["ticket.created"])
    # when: it hangs past the timeout
    receiver.hang_seconds = 2.0
    _ticket()
    hung = WebhookDelivery.objects.get()
    assert webhook_delivery_attempt(delivery_id=hung.pk) == "pending"
    hung.refresh_from_db()
    assert "timed out" in hung.last_error
    # when: it redirects to the cloud metadata address
    receiver.hang_seconds = 0.0
    receiver.redirect_to = "http://169.254.169.254/latest/meta-data/"
    WebhookDelivery.objects.filter(pk=hung.pk).update(next_attempt_at=hung.last_attempt_at)
    assert webhook_delivery_attempt(delivery_id=hung.pk) == "pending"
    hung.refresh_from_db()
    # then: the redirect is not followed (only the receiver was ever asked)
    assert hung.response_status == 302
    assert hung.last_error == (
        "redirected (HTTP 302) to http://169.254.169.254/latest/meta-data/: not followed"
    )
    assert {r.path for r in receiver.received} == {"/hook"}


@pytest.mark.django_db
def test_a_target_no_longer_allowed_is_refused_at_send_time(receiver, settings):
    # given: subscribed while loopback was allowed
    webhook_subscription_create(url=receiver.url, event_types=["ticket.created"])
    _ticket()
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    # when
    webhook_delivery_attempt(delivery_id=WebhookDelivery.objects.get().pk)
    # then
    delivery = WebhookDelivery.objects.get()
    assert delivery.last_error.startswith("refused: 127.0.0.1 resolves to a non-public address")
    assert receiver.received == []


@pytest.mark.django_db
def test_resend_through_the_api_sends_a_given_up_delivery_again(api_key_client, receiver, settings):
    # given: a delivery given up while the receiver was down
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    receiver.status = 503
    subscription = webhook_subscription_create(url=receiver.url, event_types=["ticket.created"])
    _ticket()
    delivery = WebhookDelivery.objects.get()
    assert webhook_delivery_attempt(delivery_id=delivery.pk) == "gave_up"
    receiver.status = 204
    # when
    response = api_key_client().post(f"/api/v1/webhooks/deliveries/{delivery.pk}/resend")
    # then
    assert response.status_code == 202
    assert (response.json()["status"], response.json()["attempts"]) == ("pending", 0)
    assert webhook_delivery_attempt(delivery_id=delivery.pk) == "succeeded"
    first, second = receiver.received
    assert first.json["id"] == second.json["id"]  # the same event: receivers deduplicate
    assert signature_valid(second, subscription.secret)
    missing = api_key_client().post("/api/v1/webhooks/deliveries/999999/resend")
    assert missing.status_code == 404


@pytest.mark.django_db
def test_slack_format_gets_a_text_body(receiver):
    # given
    webhook_subscription_create(
        url=receiver.url, event_types=["ticket.created"], payload_format="slack"
    )
    # when
    ticket, _ = _ticket("My order never came")
    _deliver_all()
    # then
    assert receiver.received[0].json == {
        "text": f"Ticket #{ticket.pk} opened (api): My order never came"
    }


@pytest.mark.django_db
def test_lost_and_stuck_deliveries_are_swept_back(receiver, settings):
    # given: one delivery whose worker died mid-send, one whose task was lost
    from datetime import timedelta

    from django.utils import timezone

    webhook_subscription_create(url=receiver.url, event_types=["ticket.created"])
    _ticket()
    _ticket()
    stuck, lost = WebhookDelivery.objects.order_by("id")
    long_ago = timezone.now() - timedelta(minutes=10)
    WebhookDelivery.objects.filter(pk=stuck.pk).update(
        status=DeliveryStatus.DELIVERING, last_attempt_at=long_ago
    )
    WebhookDelivery.objects.filter(pk=lost.pk).update(next_attempt_at=long_ago)
    # when
    queued = webhook_deliveries_sweep(now=timezone.now() + timedelta(minutes=2))
    # then: both are pending again and queued
    assert queued == 2
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"pending"}


@pytest.mark.django_db
def test_an_erased_ticket_leaves_no_text_in_the_delivery_log(receiver):
    # given
    webhook_subscription_create(url=receiver.url, event_types=["message.created"])
    ticket, _ = _ticket("My card number is 4111 1111 1111 1111")
    # when
    webhook_deliveries_erase(ticket_ids=[ticket.pk])
    # then
    assert WebhookDelivery.objects.get().payload == {"erased": True}


@pytest.mark.django_db
def test_a_switched_off_subscription_gets_nothing_more(receiver):
    # given: a pending delivery, then its subscription is switched off
    subscription = webhook_subscription_create(url=receiver.url, event_types=["ticket.created"])
    _ticket()
    WebhookSubscription.objects.filter(pk=subscription.pk).update(is_active=False)
    # when
    status = webhook_delivery_attempt(delivery_id=WebhookDelivery.objects.get().pk)
    # then: given up at once, nothing sent
    assert status == "gave_up"
    assert WebhookDelivery.objects.get().last_error == (
        "gave up: refused: the subscription is switched off"
    )
    assert receiver.received == []
