"""Agents' actions on copilot drafts, recorded as feedback; and the sweep that flags
auto-sent drafts worth a second look.

The copilot's services do the sending and the compare-and-set on the draft; these wrap
them so every action leaves a DraftAction (and, when it says the draft was poor, a flag)
in the same transaction.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from apps.accounts.models import User
from apps.copilot.models import Decision, Draft
from apps.copilot.selectors import policy_effective
from apps.copilot.services import draft_reject, draft_send, policy_auto_send_disable
from apps.core.exceptions import ValidationError
from apps.feedback.models import DraftAction, DraftActionKind, FlaggedReply, FlagReason
from apps.feedback.selectors import flag_policy_effective
from apps.feedback.services import (
    _action_append,
    _flag_open_or_conflict,
    flagged_reply_open,
    reopened_replies_flag,
)
from apps.tickets.models import Message
from apps.tickets.services import Actor

# Character-level Levenshtein up to this many cells (len(a) * len(b)); word-level above.
EDIT_DISTANCE_MAX_CELLS = 4_000_000


def _levenshtein(first: list[str] | str, second: list[str] | str) -> int:
    if len(first) < len(second):
        first, second = second, first
    previous = list(range(len(second) + 1))
    for index, left in enumerate(first, start=1):
        current = [index]
        for position, right in enumerate(second, start=1):
            current.append(
                min(
                    previous[position] + 1,
                    current[position - 1] + 1,
                    previous[position - 1] + (left != right),
                )
            )
        previous = current
    return previous[-1]


def edit_distance(draft: str, sent: str) -> tuple[int, float, str]:
    """(distance, distance over the longer text's length, unit) between two texts."""
    first: str | list[str]
    second: str | list[str]
    if len(draft) * len(sent) <= EDIT_DISTANCE_MAX_CELLS:
        first, second, unit = draft, sent, "char"
    else:
        first, second, unit = draft.split(), sent.split(), "word"
    distance = _levenshtein(first, second)
    longest = max(len(first), len(second))
    return distance, (distance / longest if longest else 0.0), unit


def _sent_message(draft: Draft) -> Message | None:
    if draft.sent_message_id is None:
        return None
    return Message.objects.filter(pk=draft.sent_message_id).first()


@transaction.atomic
def draft_send_recorded(
    *, draft: Draft, user: User | None, body: str | None = None, via: Actor | None = None,
    by: str = "",
) -> DraftAction:  # fmt: skip
    """Send the draft as it is (`body` None or unchanged) or as the agent edited it, and
    record which. A heavily edited draft (edit ratio ≥ FEEDBACK_HEAVY_EDIT_RATIO) is flagged.
    `user` None: an agent in another tool, through the API (`via` the key, `by` their name).

    Raises ConflictError when the draft is no longer pending (another agent acted on it).
    """
    original = draft.body
    if body is not None and not body.strip():
        raise ValidationError("the reply is empty", field="body")
    edited = body is not None and body.replace("\r\n", "\n") != original.replace("\r\n", "\n")
    sent = draft_send(draft=draft, actor=user, body=body if edited else None, via=via)
    who = user.get_username() if user is not None else (by or "an agent through the API")
    text = body if edited and body is not None else original
    distance, ratio, unit = edit_distance(original, text) if edited else (0, 0.0, "char")
    action = DraftAction.objects.create(
        draft=sent,
        ticket_id=sent.ticket_id,
        kind=DraftActionKind.EDITED if edited else DraftActionKind.ACCEPTED,
        agent=user,
        intent=sent.intent,
        draft_body=original,
        sent_body=text,
        sent_message=_sent_message(sent),
        edit_distance=distance,
        edit_ratio=min(1.0, ratio),
        edit_unit=unit,
    )
    if edited and ratio >= settings.FEEDBACK_HEAVY_EDIT_RATIO:
        flagged_reply_open(
            ticket=sent.ticket,
            draft=sent,
            message=action.sent_message,
            reason=FlagReason.HEAVILY_EDITED,
            detail=f"{who} changed {ratio:.0%} of the draft before sending it",
            intent=sent.intent,
        )
    return action


@transaction.atomic
def draft_reject_recorded(
    *, draft: Draft, user: User | None, reason: str, by: str = ""
) -> DraftAction:
    """Reject the draft (nothing is sent) with the agent's reason, and flag it for review.
    `user` None: an agent in another tool, through the API (`by` their name)."""
    reason = reason.replace("\x00", "").strip()
    if not reason:
        raise ValidationError("say why the draft is rejected", field="reason")
    rejected = draft_reject(draft=draft, actor=user, reason=reason[:1000])
    action = DraftAction.objects.create(
        draft=rejected,
        ticket_id=rejected.ticket_id,
        kind=DraftActionKind.REJECTED,
        agent=user,
        intent=rejected.intent,
        draft_body=rejected.body,
        reject_reason=reason[:1000],
    )
    flagged_reply_open(
        ticket=rejected.ticket,
        draft=rejected,
        reason=FlagReason.DRAFT_REJECTED,
        detail=f"rejected by {user.get_username() if user else by or 'an agent through the API'}: "
        f"{reason}",
        intent=rejected.intent,
    )
    return action


def flagged_drafts_collect(*, since: timedelta | None = None) -> int:
    """Flag recent drafts worth an admin's look; returns how many flags were new.

    - auto-sent with a confidence within the flag policy's band above the auto-send
      threshold in force: the confidence is a calibrated probability, so these are the
      auto-sends most likely to be wrong (at 0.94-0.95, about one in 17);
    - of the other auto-sent drafts, a share picked at random (a stable hash of the draft,
      so a rerun picks the same ones) for a spot check;
    - drafts whose validation caught something (citations not retrieved, links not from the
      knowledge base): the guard's verdicts;
    - the reply that resolved a ticket its customer reopened soon after (a complaint: it
      weakens the reply's intent→article link until reviewed).
    Each kind can be switched off in the admin's flag policy. Idempotent: a draft is flagged
    once per reason.
    """
    flags = flag_policy_effective()
    window = since or timedelta(seconds=settings.FEEDBACK_COLLECT_WINDOW_SECONDS)
    recent = Draft.objects.filter(
        created_at__gte=timezone.now() - window, evaluation=False
    ).select_related("ticket")
    threshold = policy_effective().auto_send_threshold
    band_top = threshold + flags.low_margin_band
    created = 0
    auto_sent = recent.filter(decision=Decision.AUTO_SENT)
    if flags.raises(FlagReason.LOW_MARGIN):
        for draft in auto_sent.filter(confidence__lt=band_top).exclude(
            pk__in=_flagged(FlagReason.LOW_MARGIN)
        ):
            created += _flag(
                draft,
                FlagReason.LOW_MARGIN,
                f"auto-sent at confidence {draft.confidence:.3f}, within "
                f"{flags.low_margin_band:.3f} of the threshold {threshold:.3f}: about one "
                f"reply in {1 / max(1e-6, 1 - (draft.confidence or 0)):.0f} this sure is wrong",
            )
    if flags.raises(FlagReason.SPOT_CHECK):
        for draft in auto_sent.filter(confidence__gte=band_top).exclude(
            pk__in=_flagged(FlagReason.SPOT_CHECK)
        ):
            if _sampled(draft.pk, flags.spot_check_share):
                created += _flag(
                    draft,
                    FlagReason.SPOT_CHECK,
                    f"picked at random for a spot check ({flags.spot_check_share:.0%} of "
                    f"auto-sent replies); confidence {draft.confidence:.3f}",
                )
    if flags.raises(FlagReason.GUARD_VERDICT):
        for draft in recent.exclude(pk__in=_flagged(FlagReason.GUARD_VERDICT)):
            verdicts = _guard_verdicts(draft.validation or {})
            if verdicts:
                created += _flag(draft, FlagReason.GUARD_VERDICT, "; ".join(verdicts))
    if flags.raises(FlagReason.REOPENED):
        created += reopened_replies_flag(since=timezone.now() - window)
    return created


def _flagged(reason: str) -> QuerySet[FlaggedReply, int]:
    return FlaggedReply.objects.filter(reason=reason, draft__isnull=False).values_list(
        "draft", flat=True
    )


def _flag(draft: Draft, reason: str, detail: str) -> int:
    flagged = flagged_reply_open(
        ticket=draft.ticket,
        draft=draft,
        message=_sent_message(draft),
        reason=FlagReason(reason),
        detail=detail,
        intent=draft.intent,
    )
    return 1 if flagged is not None else 0


def _sampled(draft_id: int, share: float) -> bool:
    """Whether the draft falls in the random `share`: a stable hash of its id, so every run
    (and every worker) picks the same drafts."""
    digest = hashlib.sha256(f"spot-check:{draft_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def _guard_verdicts(validation: dict) -> list[str]:
    verdicts = []
    if validation.get("invalid_citations"):
        verdicts.append(
            f"cited passages that were not retrieved: {validation['invalid_citations']}"
        )
    if validation.get("foreign_links"):
        verdicts.append(f"links not in the knowledge base: {validation['foreign_links']}")
    return verdicts


@transaction.atomic
def flagged_reply_disable_auto_send(*, flagged: FlaggedReply, user: User) -> FlaggedReply:
    """Stop auto-sending drafts for the flag's intent: every draft of it goes to an agent.

    The copilot's policy service writes it; the intent comes from the flag.
    """
    flagged = _flag_open_or_conflict(flagged)
    if not flagged.intent:
        raise ValidationError("this flag has no intent to disable auto-send for", field="intent")
    policy_auto_send_disable(intent=flagged.intent)
    _action_append(flagged, action="auto_send_disabled", user=user, detail=flagged.intent)
    flagged.save(update_fields=["actions_taken", "updated_at"])
    return flagged
