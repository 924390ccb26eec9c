"""Operations alerts: one row per alert key (e.g. "budget:daily:80"), its state and when it
was last sent, so one incident sends one alert."""

from __future__ import annotations

from django.db import models

from apps.core.models import TimeStampedModel


class AlertState(models.TextChoices):
    FIRING = "firing", "firing"
    RESOLVED = "resolved", "resolved"


class Alert(TimeStampedModel):
    key = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=50, db_index=True)
    severity = models.CharField(max_length=16, default="warning")  # warning, critical
    state = models.CharField(max_length=16, choices=AlertState.choices, db_index=True)
    message = models.TextField()
    value = models.JSONField(default=dict, blank=True)  # the figures that made it fire
    fired_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    sends = models.PositiveIntegerField(default=0)
    suppressed = models.PositiveIntegerField(
        default=0, help_text="Firings not sent because the last send was within the cooldown."
    )
    last_error = models.CharField(max_length=1000, blank=True)

    class Meta:
        ordering = ["-fired_at"]

    def __str__(self) -> str:
        return f"{self.key} ({self.state})"


class DailyFigures(models.Model):
    """One UTC day's figures for the insights page, computed by beat from that day's rows
    (apps.operations.rollups): the page reads a month of these, never the tickets."""

    day = models.DateField(unique=True)
    figures = models.JSONField(default=dict)
    refreshed_at = models.DateTimeField()

    class Meta:
        ordering = ["-day"]

    def __str__(self) -> str:
        return str(self.day)
