"""Reads of feedback: the flag policy in force, and what a rated reply was when it was sent."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from apps.copilot.models import Draft
from apps.copilot.selectors import draft_for_sent_message
from apps.feedback.models import FlagPolicy, FlagReason
from apps.tickets.models import AuthorKind, Message


@dataclass(frozen=True)
class EffectiveFlagPolicy:
    enabled: frozenset[str]  # FlagReason values that are raised
    low_margin_band: float
    spot_check_share: float

    def raises(self, reason: str) -> bool:
        return reason in self.enabled


def flag_policy_effective() -> EffectiveFlagPolicy:
    """The admin's FlagPolicy row over the settings' defaults (every flag on)."""
    row = FlagPolicy.objects.first()
    if row is None:
        return EffectiveFlagPolicy(
            enabled=frozenset(FlagReason.values),
            low_margin_band=settings.FEEDBACK_LOW_MARGIN,
            spot_check_share=settings.FEEDBACK_SPOT_CHECK_SHARE,
        )
    switches = {
        FlagReason.THUMBS_DOWN: row.thumbs_down,
        FlagReason.DRAFT_REJECTED: row.draft_rejected,
        FlagReason.HEAVILY_EDITED: row.heavily_edited,
        FlagReason.LOW_MARGIN: row.low_margin,
        FlagReason.GUARD_VERDICT: row.guard_verdict,
    }
    share = (
        settings.FEEDBACK_SPOT_CHECK_SHARE if row.spot_check_share is None else row.spot_check_share
    )
    enabled = {reason for reason, on in switches.items() if on}
    if share > 0:
        enabled.add(FlagReason.SPOT_CHECK)
    return EffectiveFlagPolicy(
        enabled=frozenset(enabled),
        low_margin_band=(
            settings.FEEDBACK_LOW_MARGIN if row.low_margin_band is None else row.low_margin_band
        ),
        spot_check_share=share,
    )


def reply_origin(*, message: Message) -> tuple[Draft | None, str]:
    """The draft a sent reply came from and the intent it answered, as when it was sent: the
    draft's own intent, or for a reply an agent wrote, the intent triage gave the customer
    message it answered."""
    draft = draft_for_sent_message(message_id=message.pk)
    if draft is not None:
        return draft, draft.intent
    answered = (
        Message.objects.filter(
            ticket_id=message.ticket_id, author_kind=AuthorKind.CUSTOMER, id__lt=message.pk
        )
        .order_by("-id")
        .values_list("intent", flat=True)
        .first()
    )
    return None, answered or ""
