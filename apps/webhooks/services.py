"""Outbound webhooks: subscribe, emit an event, deliver it signed, retry, give up, re-send.

An event is written as one delivery row per subscriber in the transaction that made it (an
outbox: a rolled-back ticket sends nothing, a committed one is never lost) and sent by a
Celery task after commit. A delivery is at least once: a worker killed mid-request sends it
again, so receivers deduplicate on the event id (the same for every subscriber).

Each request carries `Deskpilot-Signature: t=<unix time>,v1=<hex>`, the HMAC-SHA256 of
"<t>.<body>" under the subscription's secret: a receiver checks it and refuses an old `t`
(a replay). Redirects are not followed, and a target on a non-public address is refused
unless its network is in WEBHOOK_ALLOWED_NETWORKS (checked at subscription and at each send).
Nothing here ever blocks or fails the caller's work: a target that times out, answers an
error or redirects is retried with backoff and then given up, with the reason kept.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Collection
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.core.broker import task_send
from apps.core.exceptions import NotFoundError, ValidationError
from apps.core.outbound import OutboundRefused, outbound_url_check
from apps.webhooks.models import (
    DeliveryStatus,
    EventType,
    PayloadFormat,
    WebhookDelivery,
    WebhookSubscription,
)

logger = logging.getLogger(__name__)

DELIVERY_TASK = "webhooks.delivery_attempt"
SIGNATURE_HEADER = "Deskpilot-Signature"
# A delivery left "being sent" this long is taken to have died with its worker.
STALE_DELIVERING = timedelta(minutes=5)
LOST_AFTER = timedelta(minutes=10)
_URL = URLValidator(schemes=["http", "https"])


def webhook_target_check(url: str) -> None:
    outbound_url_check(
        url, allowed_networks=settings.WEBHOOK_ALLOWED_NETWORKS, setting="WEBHOOK_ALLOWED_NETWORKS"
    )


def webhook_subscription_create(
    *,
    url: str,
    event_types: Collection[str],
    payload_format: str = PayloadFormat.DESKPILOT,
    name: str = "",
    created_by: str = "",
) -> WebhookSubscription:
    """Subscribe `url` to `event_types`. Refused (ValidationError): a URL that is not http(s),
    an unknown or empty event list, a target on a non-public address that is not allowed."""
    url = (url or "").strip()
    try:
        _URL(url)
    except DjangoValidationError as error:
        raise ValidationError(f"{url!r} is not an http(s) URL", field="url") from error
    known = set(EventType.values)
    types = sorted(set(event_types or ()))
    unknown = [t for t in types if t not in known]
    if not types or unknown:
        raise ValidationError(
            f"unknown event types {unknown}; choose from {sorted(known)}"
            if unknown
            else f"give at least one event type, from {sorted(known)}",
            field="event_types",
        )
    if payload_format not in PayloadFormat.values:
        raise ValidationError(
            f"payload_format must be one of {PayloadFormat.values}", field="payload_format"
        )
    try:
        webhook_target_check(url)
    except OutboundRefused as error:
        raise ValidationError(str(error), field="url") from error
    return WebhookSubscription.objects.create(
        url=url,
        event_types=types,
        payload_format=payload_format,
        name=name.strip()[:100],
        created_by=created_by[:150],
    )


def webhook_subscription_delete(*, subscription_id: int) -> None:
    """Remove a subscription and its delivery log; NotFoundError when there is none."""
    deleted, _ = WebhookSubscription.objects.filter(pk=subscription_id).delete()
    if not deleted:
        raise NotFoundError(f"no webhook subscription {subscription_id}")


def webhook_event_emit(
    *, event_type: EventType, data: dict[str, Any], summary: str, ticket_id: int | None = None
) -> int:
    """Record `event_type` for every active subscriber, in the caller's transaction, and send
    after commit. `summary` is the one-line text a Slack-format subscriber gets. Returns how
    many deliveries were written (0, and one cheap query, without subscribers)."""
    subscribers = [
        s
        for s in WebhookSubscription.objects.filter(is_active=True).only(
            "id", "event_types", "payload_format"
        )
        if s.receives(event_type)
    ]
    if not subscribers:
        return 0
    now = timezone.now()
    event_id = uuid.uuid4()
    envelope = {
        "id": str(event_id),
        "type": str(event_type),
        "created_at": now.isoformat(),
        "data": data,
    }
    deliveries = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            subscription=subscriber,
            event_id=event_id,
            event_type=event_type,
            payload=(
                {"text": summary} if subscriber.payload_format == PayloadFormat.SLACK else envelope
            ),
            ticket_id=ticket_id,
            next_attempt_at=now,
        )
        for subscriber in subscribers
    )
    # One task for the event's deliveries, published once, without retries: a broker that
    # is slow or down never holds the caller (a customer's request); the sweep sends later.
    ids = [delivery.pk for delivery in deliveries]
    transaction.on_commit(partial(_publish, ids), robust=True)
    return len(deliveries)


def _publish(delivery_ids: list[int], countdown: float = 0) -> None:
    """Queue the deliveries' send; a broker that is down leaves them to the sweep."""
    try:
        task_send(
            DELIVERY_TASK, kwargs={"delivery_ids": delivery_ids}, queue="default",
            countdown=countdown or None, retry=False,
        )  # fmt: skip
    except Exception as error:
        logger.warning("webhook deliveries %s not queued: %s", delivery_ids, error)


def signature(*, secret: str, timestamp: int, body: bytes) -> str:
    """The `Deskpilot-Signature` header's value for `body` sent at `timestamp`."""
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None  # urllib then raises HTTPError with the 3xx status


_OPENER = urllib.request.build_opener(_NoRedirects)


def _send(delivery: WebhookDelivery) -> tuple[int | None, str]:
    """POST the delivery once: (HTTP status or None, error text; empty on success)."""
    subscription = delivery.subscription
    try:
        webhook_target_check(subscription.url)
    except OutboundRefused as error:
        return None, f"refused: {error}"
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    request = urllib.request.Request(  # noqa: S310 (http(s) only: checked above)
        subscription.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "Deskpilot-Webhooks/1.0",
            "Deskpilot-Event": delivery.event_type,
            "Deskpilot-Event-Id": str(delivery.event_id),
            "Deskpilot-Delivery": str(delivery.pk),
            SIGNATURE_HEADER: signature(
                secret=subscription.secret, timestamp=int(time.time()), body=body
            ),
        },
    )
    try:
        with _OPENER.open(request, timeout=settings.WEBHOOK_TIMEOUT_SECONDS) as response:
            return response.status, ""
    except urllib.error.HTTPError as error:
        if 300 <= error.code < 400:
            where = error.headers.get("Location", "?")
            return error.code, f"redirected (HTTP {error.code}) to {where}: not followed"
        return error.code, f"HTTP {error.code}"
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        return None, f"unreachable: {getattr(error, 'reason', error)}"


def _backoff(attempts: int) -> float:
    """Seconds before the next try: doubling from WEBHOOK_RETRY_BASE_SECONDS, capped at an
    hour, with ±20% jitter so a receiver that comes back is not hit by every retry at once."""
    delay = min(settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** (attempts - 1), 3600.0)
    return delay * random.uniform(0.8, 1.2)  # noqa: S311 (jitter, not a secret)


def webhook_delivery_attempt(*, delivery_id: int) -> str | None:
    """Send a pending delivery whose time has come, once; returns its new status (None when
    there was nothing to do: gone, done, not due, or taken by another worker).

    Claimed by compare-and-set (pending → being sent), so two workers never send it at once;
    after a failure it is pending again with its next time, or given up after
    WEBHOOK_MAX_ATTEMPTS tries.
    """
    now = timezone.now()
    # The claim counts the try: a send that hangs or kills its worker still uses one up, so
    # a target that never answers is given up. The attempt number is the claim's token.
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=now
    ).update(status=DeliveryStatus.DELIVERING, last_attempt_at=now, attempts=F("attempts") + 1)
    if not claimed:
        return None
    delivery = WebhookDelivery.objects.select_related("subscription").get(pk=delivery_id)
    attempts = delivery.attempts
    if not delivery.subscription.is_active:
        status_code, error = None, "refused: the subscription is switched off"
        attempts = settings.WEBHOOK_MAX_ATTEMPTS  # no retry
    else:
        status_code, error = _send(delivery)
    fields: dict[str, Any] = {"response_status": status_code}
    if not error:
        fields.update(status=DeliveryStatus.SUCCEEDED, delivered_at=timezone.now(), last_error="")
    elif attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
        fields.update(status=DeliveryStatus.GAVE_UP, last_error=f"gave up: {error}"[:1000])
        logger.warning(
            "webhook delivery %s to subscription %s given up after %s tries: %s",
            delivery_id, delivery.subscription_id, attempts, error,
        )  # fmt: skip
    else:
        delay = _backoff(attempts)
        fields.update(
            status=DeliveryStatus.PENDING,
            next_attempt_at=timezone.now() + timedelta(seconds=delay),
            last_error=error[:1000],
        )
        logger.info("webhook delivery %s failed (%s); retry in %.0f s", delivery_id, error, delay)
    # Only this claim's result: after a sweep gave the delivery to another worker, it is not.
    mine = WebhookDelivery.objects.filter(
        pk=delivery_id, status=DeliveryStatus.DELIVERING, attempts=delivery.attempts
    ).update(**fields)
    if mine and fields["status"] == DeliveryStatus.PENDING:
        _publish([delivery_id], countdown=delay)
    return str(fields["status"]) if mine else None


def webhook_delivery_resend(*, delivery_id: int) -> WebhookDelivery:
    """Send a delivery again from scratch (a fixed receiver; a lost event): pending, no tries
    counted, due now. The same event id: a receiver that had it can tell."""
    updated = (
        WebhookDelivery.objects.filter(pk=delivery_id)
        .exclude(status=DeliveryStatus.DELIVERING)
        .update(
            status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=timezone.now(), last_error=""
        )
    )
    if not updated:
        if not WebhookDelivery.objects.filter(pk=delivery_id).exists():
            raise NotFoundError(f"no webhook delivery {delivery_id}")
        raise ValidationError("the delivery is being sent right now; try again in a moment")
    transaction.on_commit(partial(_publish, [delivery_id]), robust=True)
    return WebhookDelivery.objects.get(pk=delivery_id)


def webhook_deliveries_sweep(*, now: datetime | None = None) -> int:
    """Beat: deliveries whose worker died mid-send are pending again, and pending ones past
    their time whose task was lost (a broker outage) are queued again. Returns how many."""
    now = now or timezone.now()
    stuck = WebhookDelivery.objects.filter(
        status=DeliveryStatus.DELIVERING, last_attempt_at__lt=now - STALE_DELIVERING
    )
    stuck.filter(attempts__gte=settings.WEBHOOK_MAX_ATTEMPTS).update(
        status=DeliveryStatus.GAVE_UP, last_error="gave up: every try hung or lost its worker"
    )
    # A task normally fires at next_attempt_at; one still unsent well after it was lost (a
    # broker outage), not merely queued behind others.
    late = WebhookDelivery.objects.filter(
        status=DeliveryStatus.PENDING, next_attempt_at__lte=now - LOST_AFTER
    )
    due = [
        *stuck.values_list("pk", flat=True)[:1000],
        *late.values_list("pk", flat=True)[:1000],
    ]
    WebhookDelivery.objects.filter(
        pk__in=due, status__in=[DeliveryStatus.PENDING, DeliveryStatus.DELIVERING]
    ).update(status=DeliveryStatus.PENDING, next_attempt_at=now)
    for start in range(0, len(due), 100):
        _publish(due[start : start + 100])
    return len(due)


def webhook_deliveries_erase(*, ticket_ids: Collection[int]) -> int:
    """Blank the payloads of these tickets' deliveries (a customer's erasure); the log of
    what was sent when stays."""
    return WebhookDelivery.objects.filter(ticket_id__in=list(ticket_ids)).update(
        payload={"erased": True}
    )


def webhook_deliveries_purge(*, before: datetime) -> int:
    """Delete finished deliveries older than `before` (retention)."""
    deleted, _ = WebhookDelivery.objects.filter(
        created_at__lt=before, status__in=[DeliveryStatus.SUCCEEDED, DeliveryStatus.GAVE_UP]
    ).delete()
    return deleted
