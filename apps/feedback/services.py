"""Writes of feedback: customer ratings, CSAT, flags for the admin's review.

Every function is safe to call twice with the same input (ratings are upserts, flags are
unique per reply and reason).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.copilot.models import Draft, DraftStatus
from apps.copilot.services.penalties import link_penalty_add, link_penalty_clear
from apps.core.exceptions import ConflictError, ValidationError
from apps.feedback.models import (
    CsatRating,
    DraftAction,
    FlaggedReply,
    FlagReason,
    FlagStatus,
    IntentCorrection,
    RatingValue,
    ReplyRating,
)
from apps.feedback.selectors import flag_policy_effective, reply_origin
from apps.knowledge.services import article_input_build, articles_push
from apps.tickets.models import AuthorKind, Message, Ticket
from apps.tickets.selectors import message_list, reopenings_since
from apps.tickets.services import ticket_triage_record
from apps.triage.models import ExampleSource
from apps.triage.services import training_example_record_correction

REPLY_AUTHOR_KINDS = (AuthorKind.AGENT, AuthorKind.COPILOT)
FLAG_DETAIL_MAX_CHARS = 2000
# The knowledge source that holds answers admins wrote while reviewing flagged replies.
REVIEW_NOTES_SOURCE = "review-notes"


@transaction.atomic
def reply_rate(*, message: Message, value: str) -> ReplyRating:
    """Record the customer's thumbs up/down on a reply; the latest value counts.

    A thumbs-down flags the reply for review; changing it to a thumbs-up withdraws a flag
    that nobody has reviewed yet (a reviewed one is kept: it is part of the audit).
    """
    if value not in RatingValue.values:
        raise ValidationError(
            f"value must be one of {', '.join(RatingValue.values)}", field="value"
        )
    if message.author_kind not in REPLY_AUTHOR_KINDS:
        raise ValidationError("only replies from the team can be rated", field="message")
    draft, intent = reply_origin(message=message)
    rating, _ = ReplyRating.objects.update_or_create(
        message=message,
        defaults={"ticket_id": message.ticket_id, "value": value, "draft": draft, "intent": intent},
    )
    if value == RatingValue.DOWN:
        complaint_flag(
            ticket=message.ticket, message=message, draft=draft, intent=intent,
            reason=FlagReason.THUMBS_DOWN,
            detail=f"the customer gave a thumbs-down to this {message.author_kind} reply",
        )  # fmt: skip
    else:
        complaint_withdraw(ticket=message.ticket, reason=FlagReason.THUMBS_DOWN, message=message)
    return rating


def complaint_flag(
    *,
    ticket: Ticket,
    message: Message,
    draft: Draft | None,
    intent: str,
    reason: FlagReason,
    detail: str,
) -> FlaggedReply | None:
    """A customer's complaint about a reply (thumbs-down, low CSAT, reopening): flag it for
    review and, when a draft wrote it, count its intent→article pair for less until an admin
    reviewed the flag. Idempotent."""
    flagged = flagged_reply_open(
        ticket=ticket, message=message, draft=draft, reason=reason, detail=detail, intent=intent
    )
    if flagged is not None and draft is not None:
        link_penalty_add(draft=draft, ref=_penalty_ref(flagged))
    return flagged


def complaint_withdraw(
    *, ticket: Ticket, reason: FlagReason, message: Message | None = None
) -> int:
    """The customer took the complaint back: unreviewed flags of this kind go, with their
    penalties (a reviewed one is kept: it is part of the audit)."""
    withdrawn = FlaggedReply.objects.filter(ticket=ticket, reason=reason, status=FlagStatus.OPEN)
    if message is not None:
        withdrawn = withdrawn.filter(message=message)
    link_penalty_clear(refs=[_penalty_ref(flagged) for flagged in withdrawn])
    deleted, _ = withdrawn.delete()
    return deleted


def reopened_replies_flag(*, since: datetime) -> int:
    """Flag the reply that resolved each ticket the customer reopened within
    FEEDBACK_REOPEN_DAYS since `since` (beat, with the other collections). Idempotent."""
    created = 0
    window = timedelta(days=settings.FEEDBACK_REOPEN_DAYS)
    for ticket_id, resolved_at, reopened_at in reopenings_since(since=since):
        if reopened_at - resolved_at > window:
            continue  # a new question months later, not a complaint about the answer
        ticket = Ticket.objects.get(pk=ticket_id)
        reply = (
            message_list(ticket=ticket)
            .filter(author_kind__in=REPLY_AUTHOR_KINDS, created_at__lte=resolved_at)
            .order_by("-id")
            .first()
        )
        if (
            reply is None
            or FlaggedReply.objects.filter(message=reply, reason=FlagReason.REOPENED).exists()
        ):
            continue
        draft, intent = reply_origin(message=reply)
        hours = (reopened_at - resolved_at).total_seconds() / 3600
        created += bool(complaint_flag(
            ticket=ticket, message=reply, draft=draft, intent=intent,
            reason=FlagReason.REOPENED,
            detail=f"the customer reopened the ticket {hours:.0f} h after it was resolved",
        ))  # fmt: skip
    return created


def _penalty_ref(flagged: FlaggedReply) -> str:
    return f"flagged-reply:{flagged.pk}"


def csat_record(*, ticket: Ticket, score: int, comment: str = "") -> CsatRating:
    """The customer's satisfaction with the conversation, 1 to 5; the latest answer counts."""
    if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
        raise ValidationError("score must be a whole number from 1 to 5", field="score")
    if len(comment) > 2000:
        raise ValidationError("comment is longer than 2000 characters", field="comment")
    last_reply = (
        message_list(ticket=ticket)
        .filter(author_kind__in=REPLY_AUTHOR_KINDS)
        .order_by("-id")
        .first()
    )
    draft, intent = reply_origin(message=last_reply) if last_reply is not None else (None, "")
    low = score <= settings.FEEDBACK_LOW_CSAT
    if low and last_reply is not None:
        complaint_flag(
            ticket=ticket, message=last_reply, draft=draft, intent=intent,
            reason=FlagReason.LOW_CSAT,
            detail=f"the customer rated the conversation {score}/5 after this reply",
        )  # fmt: skip
    elif not low:  # a better score given since: an unreviewed low-CSAT flag is withdrawn
        complaint_withdraw(ticket=ticket, reason=FlagReason.LOW_CSAT)
    rating, _ = CsatRating.objects.update_or_create(
        ticket=ticket,
        defaults={
            "score": score,
            "comment": comment.replace("\x00", ""),
            "message": last_reply,
            "draft": draft,
            "intent": intent,
        },
    )
    return rating


def flagged_reply_open(
    *,
    ticket: Ticket,
    reason: FlagReason,
    message: Message | None = None,
    draft: Draft | None = None,
    detail: str = "",
    intent: str | None = None,
) -> FlaggedReply | None:
    """Flag a reply (a sent message and/or a draft) for the admin's review; the existing flag
    when it already has one for this reason (idempotent under concurrency: the unique
    constraints decide); None when the flag policy has this kind of flag off."""
    if not flag_policy_effective().raises(reason):
        return None
    lookups = []
    if message is not None:
        lookups.append({"message": message, "reason": reason})
    if draft is not None:
        lookups.append({"draft": draft, "reason": reason})
    for lookup in lookups:
        existing = FlaggedReply.objects.filter(**lookup).first()
        if existing is not None:
            return existing
    values: dict[str, Any] = {
        "ticket": ticket,
        "message": message,
        "draft": draft,
        "reason": reason,
        "detail": detail[:FLAG_DETAIL_MAX_CHARS],
        "intent": ticket.intent if intent is None else intent,
        "harm": flag_harm(reason=reason, message=message, draft=draft),
    }
    try:
        with transaction.atomic():
            return FlaggedReply.objects.create(**values)
    except IntegrityError:
        for lookup in lookups:
            existing = FlaggedReply.objects.filter(**lookup).first()
            if existing is not None:
                return existing
        raise


# How likely a flag marks harm a customer met, for ordering the review queue: a reply the
# customer disliked or that carried what validation caught first; then the auto-sends most
# likely wrong; then drafts an agent corrected or stopped (nobody saw them as written); spot
# checks last. A reply that reached the customer outranks the same flag on a draft.
_HARM_BY_REASON = {
    FlagReason.THUMBS_DOWN: 50,
    FlagReason.GUARD_VERDICT: 40,
    FlagReason.LOW_MARGIN: 30,
    FlagReason.HEAVILY_EDITED: 20,
    FlagReason.DRAFT_REJECTED: 10,
    FlagReason.SPOT_CHECK: 0,
    FlagReason.LOW_CSAT: 45,
    FlagReason.REOPENED: 35,
}
_REACHED_CUSTOMER = 15


def flag_harm(*, reason: str, message: Message | None, draft: Draft | None) -> int:
    reached = draft is not None and draft.status == DraftStatus.AUTO_SENT
    if reason == FlagReason.THUMBS_DOWN or (
        message is not None and message.author_kind == AuthorKind.COPILOT
    ):
        reached = True
    return _HARM_BY_REASON.get(FlagReason(reason), 0) + (_REACHED_CUSTOMER if reached else 0)


def _action_append(flagged: FlaggedReply, *, action: str, user: User, detail: str = "") -> None:
    flagged.actions_taken = [
        *flagged.actions_taken,
        {
            "action": action,
            "at": timezone.now().isoformat(),
            "by": user.get_username(),
            "detail": detail[:500],
        },
    ]


@transaction.atomic
def flagged_reply_review(*, flagged: FlaggedReply, user: User, note: str = "") -> FlaggedReply:
    """Mark a flag reviewed. Reviewing a reviewed flag is a conflict: someone else did it."""
    updated = FlaggedReply.objects.filter(pk=flagged.pk, status=FlagStatus.OPEN).update(
        status=FlagStatus.REVIEWED, reviewed_by=user, reviewed_at=timezone.now()
    )
    if updated != 1:
        raise ConflictError(f"flagged reply #{flagged.pk} was already reviewed", field="status")
    flagged.refresh_from_db()
    _action_append(flagged, action="marked_reviewed", user=user, detail=note)
    FlaggedReply.objects.filter(pk=flagged.pk).update(actions_taken=flagged.actions_taken)
    link_penalty_clear(refs=[_penalty_ref(flagged)])
    return flagged


# --- agent corrections and the admin's fixes ---------------------------------------------------


def _customer_text(ticket: Ticket) -> tuple[Message | None, str]:
    """The latest customer message of a ticket: what triage classified."""
    message = (
        message_list(ticket=ticket).filter(author_kind=AuthorKind.CUSTOMER).order_by("-id").first()
    )
    return message, (message.body if message else ticket.subject)


@transaction.atomic
def ticket_intent_correct(*, ticket: Ticket, intent: str, user: User) -> IntentCorrection:
    """An agent says the ticket's intent is `intent`: the ticket takes it, and the customer's
    text becomes an agent-correction training example for the next classifier training.

    The intent must exist in triage. Choosing the intent the ticket already has is refused
    (nothing to learn). The ticket's intent confidence is cleared: it is no longer a model's.
    """
    if intent == ticket.intent:
        raise ValidationError(f"the ticket's intent is already {intent!r}", field="intent")
    message, text = _customer_text(ticket)
    example = training_example_record_correction(text=text, intent_name=intent)
    ticket_triage_record(
        ticket=ticket, intent=intent, intent_confidence=None, language=ticket.language
    )
    return IntentCorrection.objects.create(
        ticket=ticket,
        message=message,
        from_intent=ticket.intent,
        to_intent=intent,
        corrected_by=user,
        training_example_id=example.pk,
    )


def _flag_open_or_conflict(flagged: FlaggedReply) -> FlaggedReply:
    current = FlaggedReply.objects.select_for_update().get(pk=flagged.pk)
    if current.status != FlagStatus.OPEN:
        raise ConflictError(f"flagged reply #{flagged.pk} was already reviewed", field="status")
    return current


@transaction.atomic
def flagged_reply_add_knowledge_note(
    *, flagged: FlaggedReply, user: User, title: str, body: str, visibility: str
) -> FlaggedReply:
    """Add the correct answer to the knowledge base as an article of the `review-notes`
    source (one per flag: adding it again replaces it), so the copilot can cite it."""
    flagged = _flag_open_or_conflict(flagged)
    if not title.strip():
        raise ValidationError("the note needs a title", field="title")
    if not body.strip():
        raise ValidationError("the note needs the correct answer", field="body")
    item = article_input_build(
        external_id=f"flagged-reply-{flagged.pk}",
        title=title,
        body=body,
        body_format="text",
        visibility=visibility,
    )
    articles_push(source_name=REVIEW_NOTES_SOURCE, items=[item])
    _action_append(flagged, action="knowledge_note_added", user=user, detail=title)
    flagged.save(update_fields=["actions_taken", "updated_at"])
    return flagged


@transaction.atomic
def flagged_reply_add_training_example(
    *, flagged: FlaggedReply, user: User, intent: str
) -> FlaggedReply:
    """Record the customer's text as a training example of `intent` (the admin's label)."""
    flagged = _flag_open_or_conflict(flagged)
    _, text = _customer_text(flagged.ticket)
    training_example_record_correction(text=text, intent_name=intent, source=ExampleSource.ADMIN)
    _action_append(flagged, action="training_example_added", user=user, detail=intent)
    flagged.save(update_fields=["actions_taken", "updated_at"])
    return flagged


# --- erasure (apps/privacy calls these) -----------------------------------------------------


@transaction.atomic
def feedback_text_erase(*, ticket_ids: Sequence[int]) -> dict[str, int]:
    """Empty what feedback copied of these tickets' conversations: the draft and sent text of
    agents' actions, CSAT comments, flag details. Ratings, scores and kinds stay."""
    actions = DraftAction.objects.filter(ticket_id__in=ticket_ids).update(
        draft_body="", sent_body="", reject_reason=""
    )
    comments = (
        CsatRating.objects.filter(ticket_id__in=ticket_ids).exclude(comment="").update(comment="")
    )
    flags = 0
    for flagged in FlaggedReply.objects.filter(ticket_id__in=ticket_ids).only(
        "pk", "actions_taken"
    ):
        steps = [{**step, "detail": ""} for step in flagged.actions_taken]
        FlaggedReply.objects.filter(pk=flagged.pk).update(detail="", actions_taken=steps)
        flags += 1
    return {"draft_actions": actions, "csat_comments": comments, "flagged_replies": flags}
