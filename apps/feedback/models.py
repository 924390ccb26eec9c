"""What people said about the copilot's work: customer ratings, agent corrections, flags.

Every row here is evidence for evaluation and for the admin's review of what was sent.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.core.models import TimeStampedModel


class RatingValue(models.TextChoices):
    UP = "up", "Thumbs up"
    DOWN = "down", "Thumbs down"


class ReplyRating(TimeStampedModel):
    """A customer's thumbs up/down on one reply (copilot or agent). One per reply: the
    customer may change their mind, the latest value counts. `draft` and `intent` are the
    reply's as it was sent (the draft it came from and that draft's intent; for a reply an
    agent wrote, the intent of the customer message it answered), never the ticket's now."""

    message = models.OneToOneField("tickets.Message", on_delete=models.CASCADE, related_name="+")
    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.CASCADE, related_name="+")
    value = models.CharField(max_length=8, choices=RatingValue.choices)
    draft = models.ForeignKey(
        "copilot.Draft", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    intent = models.CharField(max_length=100, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(value__in=RatingValue.values), name="feedback_rating_value_valid"
            )
        ]

    def __str__(self) -> str:
        return f"{self.value} on message #{self.message_id}"


class CsatRating(TimeStampedModel):
    """Customer satisfaction for a conversation, 1 (bad) to 5 (great). One per ticket.
    `message`, `draft` and `intent` are the last reply the customer had been sent when they
    rated, as it was sent (see ReplyRating)."""

    ticket = models.OneToOneField("tickets.Ticket", on_delete=models.CASCADE, related_name="+")
    score = models.PositiveSmallIntegerField()
    comment = models.TextField(blank=True)
    message = models.ForeignKey(
        "tickets.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    draft = models.ForeignKey(
        "copilot.Draft", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    intent = models.CharField(max_length=100, blank=True)

    class Meta:
        verbose_name = "CSAT rating"
        constraints = [
            models.CheckConstraint(
                condition=Q(score__gte=1, score__lte=5), name="feedback_csat_score_range"
            )
        ]

    def __str__(self) -> str:
        return f"CSAT {self.score} on ticket #{self.ticket_id}"


class IntentCorrection(models.Model):
    """An agent changed a ticket's intent: the text becomes a training example for triage."""

    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.CASCADE, related_name="+")
    # The customer message whose text was recorded as the training example.
    message = models.ForeignKey(
        "tickets.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    from_intent = models.CharField(max_length=100, blank=True)
    to_intent = models.CharField(max_length=100)
    corrected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    training_example_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"#{self.ticket_id}: {self.from_intent or '-'} → {self.to_intent}"


class DraftActionKind(models.TextChoices):
    ACCEPTED = "accepted", "Accepted and sent as drafted"
    EDITED = "edited", "Edited, then sent"
    REJECTED = "rejected", "Rejected"


class DraftAction(models.Model):
    """What an agent did with a copilot draft. A draft is acted on once (sent or rejected);
    the copilot's text and what was sent are both kept, with the edit distance between them."""

    draft = models.OneToOneField("copilot.Draft", on_delete=models.CASCADE, related_name="+")
    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, choices=DraftActionKind.choices, db_index=True)
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    intent = models.CharField(max_length=100, blank=True)
    draft_body = models.TextField(blank=True)
    sent_body = models.TextField(blank=True)
    sent_message = models.ForeignKey(
        "tickets.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Levenshtein distance between the draft and what was sent, in characters (in words for
    # very long texts, see `edit_unit`), and that distance over the longer text's length.
    edit_distance = models.PositiveIntegerField(default=0)
    edit_ratio = models.FloatField(default=0.0)
    edit_unit = models.CharField(max_length=8, default="char")
    reject_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=DraftActionKind.values), name="feedback_draft_action_kind"
            ),
            models.CheckConstraint(
                condition=Q(edit_ratio__gte=0, edit_ratio__lte=1),
                name="feedback_draft_action_ratio_range",
            ),
            models.CheckConstraint(
                condition=~Q(kind="rejected") | ~Q(reject_reason=""),
                name="feedback_draft_rejection_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} draft #{self.draft_id}"


class FlagReason(models.TextChoices):
    """Why a reply deserves an admin's look."""

    THUMBS_DOWN = "thumbs_down", "Customer thumbs-down"
    DRAFT_REJECTED = "draft_rejected", "Draft rejected by an agent"
    HEAVILY_EDITED = "heavily_edited", "Draft heavily edited by an agent"
    LOW_MARGIN = "low_margin", "Auto-sent with a low margin"
    GUARD_VERDICT = "guard_verdict", "Guard verdict"
    SPOT_CHECK = "spot_check", "Random spot check of an auto-sent reply"
    LOW_CSAT = "low_csat", "Low CSAT after this reply"
    REOPENED = "reopened", "Ticket reopened after this reply"


class FlagStatus(models.TextChoices):
    OPEN = "open", "Open"
    REVIEWED = "reviewed", "Reviewed"


class FlaggedReply(TimeStampedModel):
    """One reply (sent or drafted) flagged for review, with what the admin did about it."""

    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.CASCADE, related_name="+")
    # The reply the customer saw (thumbs-down, auto-sent) or the agent's replacement, if any.
    message = models.ForeignKey(
        "tickets.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    draft = models.ForeignKey(
        "copilot.Draft", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.CharField(max_length=32, choices=FlagReason.choices, db_index=True)
    detail = models.TextField(blank=True)
    intent = models.CharField(max_length=100, blank=True)
    status = models.CharField(
        max_length=16, choices=FlagStatus.choices, default=FlagStatus.OPEN, db_index=True
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    # What the admin did, in order: [{"action", "at", "by", "detail"}].
    actions_taken = models.JSONField(default=list, blank=True)
    # How likely the flag marks harm a customer met (higher first; services.flag_harm).
    harm = models.PositiveSmallIntegerField(default=0, db_index=True)

    class Meta:
        verbose_name = "flagged reply"
        verbose_name_plural = "flagged replies"
        ordering = ["-harm", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(reason__in=FlagReason.values), name="feedback_flag_reason_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=FlagStatus.values), name="feedback_flag_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(status=FlagStatus.OPEN) | Q(reviewed_at__isnull=False),
                name="feedback_flag_reviewed_has_time",
            ),
            # A reply is flagged once per reason, however often the trigger fires.
            models.UniqueConstraint(
                fields=["reason", "message"],
                condition=Q(message__isnull=False),
                name="feedback_flag_unique_per_message",
            ),
            models.UniqueConstraint(
                fields=["reason", "draft"],
                condition=Q(draft__isnull=False),
                name="feedback_flag_unique_per_draft",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_reason_display()} on ticket #{self.ticket_id}"


class FlagPolicy(TimeStampedModel):
    """Which flags are raised, edited by an admin. One row (id 1); the settings are the
    defaults until an admin saves it."""

    singleton = models.BooleanField(default=True, unique=True, editable=False)
    thumbs_down = models.BooleanField(default=True, help_text="A customer's thumbs-down.")
    draft_rejected = models.BooleanField(default=True, help_text="An agent rejected a draft.")
    heavily_edited = models.BooleanField(
        default=True, help_text="An agent changed much of a draft before sending it."
    )
    low_margin = models.BooleanField(
        default=True,
        help_text="Auto-sent replies whose confidence is within the band above the auto-send "
        "threshold: the ones most likely to be wrong.",
    )
    low_margin_band = models.FloatField(
        null=True,
        blank=True,
        help_text="The band's width (empty: FEEDBACK_LOW_MARGIN). The confidence is a "
        "calibrated probability: at 0.94-0.95, about 1 auto-sent reply in 17 is wrong.",
    )
    guard_verdict = models.BooleanField(
        default=True, help_text="Validation caught links or citations not from the knowledge base."
    )
    low_csat = models.BooleanField(
        default=True,
        help_text="The customer rated the conversation FEEDBACK_LOW_CSAT or lower: the last "
        "reply they had is flagged.",
    )
    reopened = models.BooleanField(
        default=True,
        help_text="The customer wrote again within FEEDBACK_REOPEN_DAYS of the ticket being "
        "resolved: the reply that resolved it is flagged.",
    )
    spot_check_share = models.FloatField(
        null=True,
        blank=True,
        help_text="Share of the other auto-sent replies flagged at random for a spot check "
        "(0 to 1; empty: FEEDBACK_SPOT_CHECK_SHARE; 0: none).",
    )

    class Meta:
        verbose_name = "flag policy"
        verbose_name_plural = "flag policy"
        constraints = [
            models.CheckConstraint(condition=Q(singleton=True), name="feedback_flag_policy_one"),
            models.CheckConstraint(
                condition=Q(spot_check_share__isnull=True)
                | Q(spot_check_share__gte=0, spot_check_share__lte=1),
                name="feedback_flag_policy_share_range",
            ),
        ]

    def __str__(self) -> str:
        return "Flag policy"
