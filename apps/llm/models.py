"""LLMCall: one row per gateway call, successful or not (the cost, latency and error log)."""

from __future__ import annotations

from decimal import Decimal

from django.db import models


class LLMCall(models.Model):
    class Status(models.TextChoices):
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed (every deployment and fallback)"
        BUDGET_EXHAUSTED = "budget_exhausted", "refused: budget exhausted"

    purpose = models.CharField(max_length=64, db_index=True)  # e.g. "draft", "judge"
    alias = models.CharField(max_length=64)  # what the caller asked for
    served_alias = models.CharField(max_length=64, blank=True)  # who answered (after fallback)
    model = models.CharField(max_length=200, blank=True)  # the resolved deployment's model
    deployment_id = models.CharField(max_length=100, blank=True)
    prompt_version = models.CharField(max_length=64, blank=True)
    # Plain integers, not foreign keys: apps/llm sits below tickets in the layering.
    ticket_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    message_id = models.BigIntegerField(null=True, blank=True)
    customer_id = models.BigIntegerField(null=True, blank=True)  # for the per-customer cap
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=8, default=Decimal("0"))
    latency_ms = models.PositiveIntegerField(default=0)
    time_to_first_token_ms = models.PositiveIntegerField(null=True, blank=True)
    streamed = models.BooleanField(default=False)
    cache_hit = models.BooleanField(default=False)
    # What was done to personal data before the call: {"pseudonymised": true, "replaced":
    # {"PERSON": 1}} or {"pseudonymised": false, "why": "..."} (never the values).
    redaction = models.JSONField(default=dict, blank=True)
    # The audit's text: the messages as sent (pseudonymised when they left the machine) and
    # the model's answer as received (placeholders, not personal data, for a remote model).
    request_messages = models.JSONField(default=list, blank=True)
    response_text = models.TextField(blank=True)
    attempted_aliases = models.JSONField(default=list, blank=True)  # in the order tried
    status = models.CharField(max_length=20, choices=Status.choices, db_index=True)
    error_type = models.CharField(max_length=200, blank=True)
    error_message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["ticket_id", "created_at"], name="llm_call_ticket_created"),
            models.Index(fields=["customer_id", "created_at"], name="llm_call_customer_created"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(cost_usd__gte=0), name="llm_call_cost_not_negative"
            ),
            models.CheckConstraint(
                condition=~models.Q(status="succeeded") | ~models.Q(model=""),
                name="llm_call_success_names_model",
            ),
            models.CheckConstraint(
                condition=models.Q(status="succeeded") | ~models.Q(error_type=""),
                name="llm_call_failure_has_error",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.purpose}/{self.alias} {self.status} ({self.model or '-'})"
