"""Intents, their training examples, and the classifier versions trained on them."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from apps.core.models import TimeStampedModel


class HandoffPolicy(models.TextChoices):
    AUTO = "auto", "Auto-send when confident"
    REVIEW = "review", "Agent reviews every draft"
    ALWAYS_HUMAN = "always_human", "Always hand off to a human"


class Intent(TimeStampedModel):
    """What a customer wants (e.g. `card_arrival`); the handoff policy is the team's call.

    The name is kept exactly as the team's data spells it (Banking77 has
    `reverted_card_payment?`), because callers compare it with their own labels.
    """

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    handoff_policy = models.CharField(
        max_length=16, choices=HandoffPolicy.choices, default=HandoffPolicy.AUTO
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ExampleSource(models.TextChoices):
    IMPORT = "import", "Imported"
    AGENT_CORRECTION = "agent_correction", "Agent correction"
    ADMIN = "admin", "Admin"


class TrainingExample(models.Model):
    """One labelled customer text. `normalized_text` makes re-imports idempotent."""

    text = models.TextField()
    normalized_text = models.TextField(editable=False)
    intent = models.ForeignKey(Intent, on_delete=models.PROTECT, related_name="examples")
    source = models.CharField(
        max_length=20, choices=ExampleSource.choices, default=ExampleSource.ADMIN
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["normalized_text", "intent"], name="triage_example_unique_per_intent"
            ),
            models.CheckConstraint(
                condition=~Q(normalized_text=""), name="triage_example_text_not_empty"
            ),
        ]
        indexes = [models.Index(fields=["source", "id"], name="triage_example_source_id")]

    def __str__(self) -> str:
        return f"{self.text[:60]} → {self.intent_id}"


class TrainingStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    TRAINING = "training", "Training"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"
    # Was ready; its artifact was removed to bound storage (TRIAGE_KEEP_ARTIFACTS). Its
    # recipe, metrics and report stay, for comparison; it can no longer be activated.
    RETIRED = "retired", "Retired (artifact removed)"


class TrainingSource(models.TextChoices):
    CSV = "csv", "CSV file"
    DATABASE = "database", "Training examples in the database"


class ClassifierVersion(models.Model):
    """One trained intent classifier. At most one is active; activation is a row update.

    The artifact lives in the database so every web and worker process, on any machine,
    loads the same model without a shared disk.
    """

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    training_started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=TrainingStatus.choices, default=TrainingStatus.PENDING
    )
    error = models.TextField(blank=True)
    training_source = models.CharField(max_length=16, choices=TrainingSource.choices)
    source_detail = models.CharField(max_length=500, blank=True)
    method = models.CharField(max_length=100, blank=True)
    params = models.JSONField(default=dict, blank=True)
    embedding_model = models.CharField(max_length=200, blank=True)
    example_count = models.PositiveIntegerField(default=0)
    intent_count = models.PositiveIntegerField(default=0)
    # Which examples: the highest TrainingExample id at training time (corrections after it
    # are "waiting") and a hash of the (normalised text, intent) pairs actually used.
    examples_max_id = models.BigIntegerField(default=0)
    examples_sha256 = models.CharField(max_length=64, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    training_report = models.JSONField(default=dict, blank=True)
    training_seconds = models.FloatField(null=True, blank=True)
    artifact = models.BinaryField(null=True, blank=True, editable=False)
    artifact_bytes = models.PositiveBigIntegerField(default=0)
    is_active = models.BooleanField(default=False)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"],
                condition=Q(is_active=True),
                name="triage_one_active_classifier",
            ),
            models.CheckConstraint(
                condition=Q(is_active=False) | (Q(status="ready") & Q(artifact__isnull=False)),
                name="triage_active_classifier_is_ready",
            ),
        ]

    def __str__(self) -> str:
        return f"classifier v{self.pk} ({self.status}{', active' if self.is_active else ''})"
