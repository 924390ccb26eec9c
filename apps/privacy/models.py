"""ErasureRecord: what an erasure or a retention purge removed, kept without the data."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ErasureKind(models.TextChoices):
    CUSTOMER = "customer", "Customer's request"
    RETENTION = "retention", "Retention period"


class ErasureRecord(models.Model):
    """One erasure: who asked, why, and how many rows of each kind lost their text or went.
    Never a name, address or message: `subject` is "customer #12" (ids only)."""

    kind = models.CharField(max_length=16, choices=ErasureKind.choices)
    subject = models.CharField(max_length=500, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.CharField(max_length=500, blank=True)
    counts = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=ErasureKind.values), name="privacy_erasure_kind_valid"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.subject or '-'} ({self.created_at:%Y-%m-%d})"
