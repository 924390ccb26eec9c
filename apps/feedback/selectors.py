"""Reads of feedback: the flag policy in force, what a rated reply was when it was sent, and
an agent's day with the copilot."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Avg, Count

from apps.copilot.models import Draft, DraftStatus
from apps.copilot.selectors import draft_for_sent_message
from apps.feedback.models import (
    CsatRating,
    DraftAction,
    DraftActionKind,
    FlagPolicy,
    FlagReason,
    IntentCorrection,
    RatingValue,
    ReplyRating,
)
from apps.tickets.models import AuthorKind, Message, Ticket, TicketStatus


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
        FlagReason.LOW_CSAT: row.low_csat,
        FlagReason.REOPENED: row.reopened,
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


@dataclass(frozen=True)
class AgentDay:
    """What the copilot did on an agent's tickets since a time, and what the agent did with
    its drafts (the agent's own view of the day)."""

    auto_sent: int  # replies the copilot sent on its own on the agent's tickets
    drafts_waiting: int  # drafts on the agent's tickets waiting for someone
    accepted: int  # drafts the agent sent as written
    edited: int  # drafts the agent edited, then sent
    rejected: int  # drafts the agent rejected
    mean_edit_ratio: float | None  # over the edited ones
    thumbs_up: int  # customers' thumbs on the replies on the agent's tickets
    thumbs_down: int
    handed_to_me: int  # tickets handed to a person and assigned to the agent
    recent: list[Draft]  # the latest drafts on the agent's tickets


def agent_day(*, user_id: int, since: datetime) -> AgentDay:
    """The agent's day, in a handful of indexed queries."""
    mine = Draft.objects.filter(ticket__assignee_id=user_id, evaluation=False)
    today = mine.filter(created_at__gte=since)
    actions = DraftAction.objects.filter(agent_id=user_id, created_at__gte=since)
    by_kind = dict(actions.values_list("kind").annotate(n=Count("id")).values_list("kind", "n"))
    ratings = ReplyRating.objects.filter(ticket__assignee_id=user_id, updated_at__gte=since)
    by_value = dict(ratings.values_list("value").annotate(n=Count("id")).values_list("value", "n"))
    return AgentDay(
        auto_sent=today.filter(status=DraftStatus.AUTO_SENT).count(),
        drafts_waiting=mine.filter(status=DraftStatus.PENDING, is_current=True).count(),
        accepted=by_kind.get(DraftActionKind.ACCEPTED, 0),
        edited=by_kind.get(DraftActionKind.EDITED, 0),
        rejected=by_kind.get(DraftActionKind.REJECTED, 0),
        mean_edit_ratio=actions.filter(kind=DraftActionKind.EDITED).aggregate(r=Avg("edit_ratio"))[
            "r"
        ],
        thumbs_up=by_value.get(RatingValue.UP, 0),
        thumbs_down=by_value.get(RatingValue.DOWN, 0),
        handed_to_me=Ticket.objects.filter(
            assignee_id=user_id, status=TicketStatus.HANDED_OFF, status_changed_at__gte=since
        ).count(),
        recent=list(today.select_related("ticket").order_by("-id")[:30]),
    )


def correction_example_ids(*, ticket_ids: Sequence[int]) -> list[int]:
    """The training examples agents' intent corrections made of these tickets' text."""
    ids = IntentCorrection.objects.filter(ticket_id__in=ticket_ids).values_list(
        "training_example_id", flat=True
    )
    return [pk for pk in ids if pk is not None]


@dataclass(frozen=True)
class DraftOutcome:
    """What became of a draft afterwards: the agent's action and the customer's thumbs."""

    action: str = ""  # a DraftActionKind, or "" when no agent acted on it
    edit_ratio: float | None = None  # sent drafts only
    thumbs: str = ""  # a RatingValue, or ""


def draft_outcomes(*, draft_ids: Sequence[int]) -> dict[int, DraftOutcome]:
    """Each draft's agent action and thumbs (drafts with neither are left out)."""
    actions = {
        row["draft_id"]: row
        for row in DraftAction.objects.filter(draft_id__in=draft_ids).values(
            "draft_id", "kind", "edit_ratio"
        )
    }
    thumbs = dict(
        ReplyRating.objects.filter(draft_id__in=draft_ids).values_list("draft_id", "value")
    )
    outcomes = {}
    for draft_id in set(actions) | set(thumbs):
        action = actions.get(draft_id)
        sent = action is not None and action["kind"] != DraftActionKind.REJECTED
        outcomes[draft_id] = DraftOutcome(
            action=action["kind"] if action else "",
            edit_ratio=action["edit_ratio"] if sent else None,  # type: ignore[index]
            thumbs=thumbs.get(draft_id, ""),
        )
    return outcomes


def csat_scores(*, ticket_ids: Sequence[int]) -> dict[int, int]:
    """Each rated ticket's CSAT score (1-5)."""
    return dict(
        CsatRating.objects.filter(ticket_id__in=ticket_ids).values_list("ticket_id", "score")
    )
