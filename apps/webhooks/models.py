"""Outbound webhooks: subscriptions to Deskpilot's events and the log of every delivery."""

from __future__ import annotations

import secrets
import uuid

from django.db import models
from django.db.models import Q

from apps.core.models import TimeStampedModel


class EventType(models.TextChoices):
    TICKET_CREATED = "ticket.created", "a ticket was opened"
    MESSAGE_CREATED = "message.created", "a message was added (customer, agent or copilot)"
    DRAFT_READY = "draft.ready", "the copilot wrote a draft"
    TICKET_HANDED_OFF = "ticket.handed_off", "a ticket was handed to a person"
    TICKET_RESOLVED = "ticket.resolved", "a ticket was resolved"
    ALERT_FIRED = "alert.fired", "an operations alert fired (budget, precision, outages)"


class PayloadFormat(models.TextChoices):
    DESKPILOT = "deskpilot", "Deskpilot event (id, type, created_at, data), signed"
    SLACK = "slack", 'Slack-compatible ({"text": ...}), signed'


def _secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


class WebhookSubscription(TimeStampedModel):
    name = models.CharField(max_length=100, blank=True)
    url = models.URLField(max_length=2000)
    event_types = models.JSONField(help_text="Event types to receive, e.g. ['ticket.created'].")
    payload_format = models.CharField(
        max_length=16, choices=PayloadFormat.choices, default=PayloadFormat.DESKPILOT
    )
    secret = models.CharField(max_length=100, default=_secret, editable=False)
    is_active = models.BooleanField(default=True)
    created_by = models.CharField(max_length=150, blank=True)

    def __str__(self) -> str:
        return self.name or self.url

    def receives(self, event_type: str) -> bool:
        return event_type in self.event_types


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "pending"
    DELIVERING = "delivering", "being sent"
    SUCCEEDED = "succeeded", "delivered"
    GAVE_UP = "gave_up", "given up"


class WebhookDelivery(models.Model):
    """One event for one subscription: written in the transaction that made the event (an
    outbox), sent by a Celery task after commit, retried with backoff, then given up."""

    subscription = models.ForeignKey(
        WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries"
    )
    event_id = models.UUIDField(default=uuid.uuid4)  # the same for every subscriber
    event_type = models.CharField(max_length=32, choices=EventType.choices)
    payload = models.JSONField()
    ticket_id = models.BigIntegerField(null=True, blank=True, db_index=True)  # for erasure
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=1000, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=["pending", "delivering"]),
                name="webhook_delivery_due",
            )
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "event_id"], name="webhook_delivery_once_per_event"
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.subscription} ({self.status})"
