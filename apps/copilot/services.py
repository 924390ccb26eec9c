"""The copilot pipeline and the agent's actions on drafts.

`pipeline_run` composes a draft for a customer message (apps.copilot.compose) without any
lock, then locks the ticket, checks that nothing changed (an agent took over, the ticket
was handed off or resolved, a newer customer message arrived) and saves and acts in one
transaction. One draft per message: a rerun after a crash finds it and does nothing.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Max, Value
from django.db.models.functions import Least
from django.utils import timezone

from apps.accounts.models import User
from apps.copilot import streaming
from apps.copilot.compose import Composition, draft_compose
from apps.copilot.models import (
    CopilotPolicy,
    Decision,
    Draft,
    DraftStatus,
    HandoffReason,
    IntentArticleLink,
    LinkSource,
    PromptTemplate,
    Takeover,
)
from apps.copilot.prompts import DEFAULT_DRAFT_PROMPT
from apps.copilot.selectors import DRAFT_PURPOSE, draft_for_message, prompt_active
from apps.core.exceptions import (
    ConflictError,
    InvalidTransitionError,
    NotFoundError,
    ValidationError,
)
from apps.knowledge.selectors import articles_by_external_id
from apps.llm.router import router_warm
from apps.llm.services import StreamEvent
from apps.tickets.email_outbound import email_reply_send
from apps.tickets.models import AuthorKind, Channel, Message, PipelineStatus, Ticket, TicketStatus
from apps.tickets.selectors import customer_message_latest, message_get, ticket_lock
from apps.tickets.services import (
    Actor,
    message_add,
    message_pipeline_advance,
    message_triage_record,
    ticket_assign,
    ticket_handoff,
    ticket_review_request,
    ticket_triage_record,
)
from apps.triage.services import triage_warm

logger = logging.getLogger(__name__)

RUNNABLE = (
    PipelineStatus.UNSCHEDULED,
    PipelineStatus.QUEUED,
    PipelineStatus.AWAITING_TRIAGE,
    # A run killed half-way left it processing: the next run takes it over.
    PipelineStatus.PROCESSING,
)
CLOSED_STATUSES = (TicketStatus.HANDED_OFF, TicketStatus.RESOLVED)


# --- policy --------------------------------------------------------------------------------


@transaction.atomic
def policy_auto_send_disable(*, intent: str) -> None:
    """Stop auto-sending drafts for `intent`: every draft of it goes to an agent.

    Written in the policy's per-intent overrides (read on every decision). The row is locked
    and its JSON merged, so a concurrent admin edit of another intent is not lost.
    Raises ConflictError when auto-send is already off for the intent.
    """
    if not intent:
        raise ValidationError("an intent is needed to disable auto-send for", field="intent")
    policy, _ = CopilotPolicy.objects.select_for_update().get_or_create(singleton=True)
    overrides = dict(policy.intent_overrides or {})
    current = dict(overrides.get(intent) or {})
    if current.get("auto_send") is False:
        raise ConflictError(f"auto-send is already off for {intent!r}", field="intent")
    overrides[intent] = {**current, "auto_send": False}
    CopilotPolicy.objects.filter(pk=policy.pk).update(
        intent_overrides=overrides, updated_at=timezone.now()
    )


# --- prompts -------------------------------------------------------------------------------


def prompt_template_ensure_default() -> PromptTemplate:
    """The active draft prompt; seeds version 1 (the default prompt) when there is none."""
    active = prompt_active()
    if active is not None:
        return active
    with transaction.atomic():
        if PromptTemplate.objects.filter(purpose=DRAFT_PURPOSE).exists():
            latest = PromptTemplate.objects.filter(purpose=DRAFT_PURPOSE).order_by("-version")[0]
            PromptTemplate.objects.filter(pk=latest.pk).update(is_active=True)
            latest.refresh_from_db()
            return latest
        try:
            return PromptTemplate.objects.create(
                purpose=DRAFT_PURPOSE,
                version=1,
                body=DEFAULT_DRAFT_PROMPT,
                is_active=True,
                note="Deskpilot's default",
            )
        except IntegrityError:
            pass
    return prompt_active()  # type: ignore[return-value]  # a concurrent seeder won


@transaction.atomic
def prompt_template_publish(
    *, body: str, purpose: str = DRAFT_PURPOSE, note: str = ""
) -> PromptTemplate:
    """A new version of the prompt, made the active one (drafts record the version used)."""
    if not body.strip():
        raise ValidationError("a prompt needs a body", field="body")
    latest = PromptTemplate.objects.filter(purpose=purpose).aggregate(v=Max("version"))["v"] or 0
    PromptTemplate.objects.filter(purpose=purpose, is_active=True).update(is_active=False)
    return PromptTemplate.objects.create(
        purpose=purpose, version=latest + 1, body=body, is_active=True, note=note
    )


# --- the pipeline --------------------------------------------------------------------------


def _stale_reason(ticket: Ticket, message: Message) -> tuple[str, str] | None:
    """Why the copilot must not act on this message now, or None."""
    if Takeover.objects.filter(ticket_id=ticket.pk).exists():
        return HandoffReason.AGENT_TOOK_OVER, "an agent took the ticket over"
    if ticket.status in CLOSED_STATUSES:
        return HandoffReason.AGENT_TOOK_OVER, f"the ticket is {ticket.status}"
    latest = customer_message_latest(ticket_id=ticket.pk)
    if latest is not None and latest.pk != message.pk:
        return "newer_message", f"a newer customer message (#{latest.pk}) arrived"
    return None


class _DraftStream:
    """The gateway's stream callback: publishes a draft's events, coalescing deltas.

    A model sends a token or two per chunk and each event is a Redis round trip (~0.3 ms), so
    a reply of 100 chunks cost 30 ms of Deskpilot's own time. The first delta goes at once
    (time to first token); then deltas wait until FLUSH_CHARS of text or FLUSH_SECONDS since
    the last write, which a reader cannot tell from token by token. `flush()` sends the rest:
    call it when the model is done, before the final event.
    """

    FLUSH_CHARS = 48
    FLUSH_SECONDS = 0.04

    def __init__(self, ticket_id: int, channel: str = "") -> None:
        self.ticket_id = ticket_id
        self.channel = channel
        self.pending: list[str] = []
        self.pending_chars = 0
        self.flushed_at: float | None = None
        # What the customer's live view shows of the published text (the widget reads it
        # through the same LiveText): whether they actually saw any is the audit's record.
        self.watched = False
        self.live = streaming.LiveText()
        self.shown = False

    def wanted(self) -> bool:
        """Whether the model's reply is worth streaming: a widget visitor may be watching (the
        widget may connect only after the message is sent), or a reader of the ticket's
        stream is connected now. Otherwise the model answers in one response, which saves
        litellm's parsing of every chunk; a reader who connects mid-draft sees it drafting,
        then the draft."""
        if settings.COPILOT_STREAM_UNWATCHED or self.channel == Channel.WIDGET:
            return True
        try:
            return streaming.stream_listeners(ticket_id=self.ticket_id) > 0
        except Exception:
            logger.warning("draft stream readers of ticket %s unknown", self.ticket_id)
            return True

    def announce(self, event: dict) -> None:
        """Publishes an "audience" event (the customer may watch this draft being written)."""
        _publish_safely(self.ticket_id, event)
        self.watched = self.watched or bool(event.get("customer"))

    def __call__(self, event: StreamEvent) -> None:
        if event.type != "delta":
            # A reset voids the text so far; the next model's first token goes at once.
            self.pending, self.pending_chars, self.flushed_at = [], 0, None
            self.live = streaming.LiveText()
            streaming.stream_publish(
                ticket_id=self.ticket_id, event={"type": event.type, "text": event.text}
            )
            return
        self.pending.append(event.text)
        self.pending_chars += len(event.text)
        if (
            self.flushed_at is None
            or self.pending_chars >= self.FLUSH_CHARS
            or time.monotonic() - self.flushed_at >= self.FLUSH_SECONDS
        ):
            self.flush()

    def flush(self) -> None:
        if self.pending:
            text = "".join(self.pending)
            self.pending, self.pending_chars = [], 0
            streaming.stream_publish(
                ticket_id=self.ticket_id, event={"type": "delta", "text": text}
            )
            if self.live.add(text) and self.watched:
                self.shown = True
        self.flushed_at = time.monotonic()


def _flush_safely(stream: _DraftStream) -> None:
    # Streaming is a preview: Redis trouble must never lose or fail a draft.
    try:
        stream.flush()
    except Exception:
        logger.warning("draft stream of ticket %s not flushed", stream.ticket_id, exc_info=True)


def _publish_safely(ticket_id: int, event: dict) -> None:
    # Streaming is a preview: Redis trouble must never lose or fail a draft.
    try:
        streaming.stream_publish(ticket_id=ticket_id, event=event)
    except Exception:
        logger.warning("draft stream event for ticket %s not published", ticket_id, exc_info=True)


def pipeline_warm() -> None:
    """Pays a process's one-time costs before its first customer message: litellm's import
    and Router, the embedding model, the active classifier. Reads only; nothing is stored."""
    router_warm()
    triage_warm()


def pipeline_run(*, message_id: int) -> Draft | None:
    """Run the copilot for one customer message; returns its draft (None when skipped).

    Idempotent: a message that already has a draft gets it back untouched; one that is done,
    failed or gone returns None. No lock is held while the model writes; the ticket is then
    locked and re-checked before the draft is saved and acted on (auto-send, review, handoff).
    """
    message = message_get(message_id=message_id)
    if message is None or message.author_kind != AuthorKind.CUSTOMER:
        return None
    existing = draft_for_message(message_id=message_id)
    if existing is not None:
        message_pipeline_advance(
            message_id=message_id, from_statuses=RUNNABLE, to_status=PipelineStatus.DONE
        )
        return existing
    if not message_pipeline_advance(
        message_id=message_id, from_statuses=RUNNABLE, to_status=PipelineStatus.PROCESSING
    ):
        return None
    ticket = message.ticket
    stale = _stale_reason(ticket, message)
    if stale is not None:
        message_pipeline_advance(
            message_id=message_id,
            from_statuses=(PipelineStatus.PROCESSING,),
            to_status=PipelineStatus.DONE,
            error=f"not drafted: {stale[1]}",
        )
        return None
    prompt = prompt_template_ensure_default()
    _publish_safely(ticket.pk, {"type": "start", "message_id": message_id})
    stream = _DraftStream(ticket.pk, ticket.channel)
    composition = draft_compose(
        text=message.body,
        prompt=prompt,
        ticket_id=ticket.pk,
        message_id=message_id,
        publish=stream,
        announce=stream.announce,
        stream_wanted=stream.wanted,
    )
    _flush_safely(stream)
    composition.shown_while_drafting = stream.shown
    draft = _draft_save_and_act(message=message, composition=composition)
    _publish_final(draft)
    return draft


def _publish_final(draft: Draft) -> None:
    """The stream's closing event; its text only when the draft went to the customer."""
    _publish_safely(
        draft.ticket_id,
        {
            "type": "final",
            "draft_id": draft.pk,
            "decision": draft.decision,
            "reason": draft.reason,
            "status": draft.status,
            "body": draft.body if draft.status == DraftStatus.AUTO_SENT else "",
        },
    )


def _triage_store(message: Message, ticket: Ticket, composition: Composition) -> None:
    message_triage_record(
        message=message,
        intent=composition.intent,
        intent_confidence=composition.intent_probability,
        intent_alternatives=composition.intent_alternatives,
        classifier_version_id=composition.classifier_version_id,
        language=composition.language,
    )
    ticket_triage_record(
        ticket=ticket,
        intent=composition.intent,
        intent_confidence=composition.intent_probability,
        language=composition.language,
    )


@transaction.atomic
def _draft_save_and_act(*, message: Message, composition: Composition) -> Draft:
    ticket = ticket_lock(ticket_id=message.ticket_id)
    existing = draft_for_message(message_id=message.pk)
    if existing is not None:  # a concurrent run won while this one drafted
        return existing
    _triage_store(message, ticket, composition)
    fields = composition.draft_fields()
    stale = _stale_reason(ticket, message)
    if stale is not None:
        reason, detail = stale
        if reason == HandoffReason.AGENT_TOOK_OVER:
            # The agent owns it now: keep the draft for them, change nothing else.
            fields.update(decision=Decision.HANDED_OFF, reason=reason, reason_detail=detail)
            if fields["status"] != DraftStatus.NOT_DRAFTED:
                fields["status"] = DraftStatus.PENDING
        else:
            fields["status"] = DraftStatus.SUPERSEDED
            fields["reason_detail"] = f"not acted on: {detail}. {fields['reason_detail']}".strip()
            if fields["decision"] == Decision.AUTO_SENT:
                fields.update(decision=Decision.NEEDS_REVIEW, reason=HandoffReason.NEWER_MESSAGE)
        draft = Draft.objects.create(ticket=ticket, message=message, generation=1, **fields)
        _pipeline_done(message.pk)
        return draft
    draft = Draft.objects.create(ticket=ticket, message=message, generation=1, **fields)
    copilot = Actor.copilot()
    if draft.decision == Decision.AUTO_SENT:
        sent = _reply_post(
            ticket=ticket, body=draft.body, author_kind=AuthorKind.COPILOT, actor=copilot
        )
        Draft.objects.filter(pk=draft.pk).update(
            status=DraftStatus.AUTO_SENT, sent_message_id=sent.pk
        )
        draft.status, draft.sent_message_id = DraftStatus.AUTO_SENT, sent.pk
    elif draft.decision == Decision.NEEDS_REVIEW:
        if ticket.status != TicketStatus.NEEDS_REVIEW:
            ticket_review_request(
                ticket=ticket,
                actor=copilot,
                reason=f"{draft.get_reason_display()}: {draft.reason_detail}",
            )
    else:
        ticket_handoff(
            ticket=ticket,
            actor=copilot,
            reason=f"{draft.get_reason_display()}: {draft.reason_detail}"[:500],
        )
    _pipeline_done(message.pk)
    return draft


def _pipeline_done(message_id: int) -> None:
    message_pipeline_advance(
        message_id=message_id, from_statuses=RUNNABLE, to_status=PipelineStatus.DONE
    )


def _reply_post(
    *,
    ticket: Ticket,
    body: str,
    author_kind: AuthorKind,
    actor: Actor,
    author_user: User | None = None,
) -> Message:
    """Post a reply on the ticket; by email too when the conversation is by email."""
    if ticket.channel == Channel.EMAIL and ticket.customer.email:
        return email_reply_send(
            ticket=ticket, body=body, author_kind=author_kind, actor=actor, author_user=author_user
        )
    return message_add(
        ticket=ticket, author_kind=author_kind, body=body, actor=actor, author_user=author_user
    )


def pipeline_fail(*, message_id: int, error: str) -> None:
    """Record a terminal pipeline failure on the message and hand the ticket to a human.

    Idempotent: a message already done or failed is left as it is. One transaction: a run
    killed half-way through leaves the message as it was (the sweep delivers it again), never
    failed with nobody on its ticket.
    """
    message = message_get(message_id=message_id)
    if message is None:
        return
    with transaction.atomic():
        ticket = ticket_lock(ticket_id=message.ticket_id)
        if not message_pipeline_advance(
            message_id=message_id,
            from_statuses=RUNNABLE,
            to_status=PipelineStatus.FAILED,
            error=error,
        ):
            return
        if draft_for_message(message_id=message_id) is None:
            Draft.objects.create(
                ticket=ticket,
                message=message,
                generation=1,
                status=DraftStatus.FAILED,
                decision=Decision.HANDED_OFF,
                reason=HandoffReason.PIPELINE_FAILED,
                reason_detail=error[:2000],
            )
        if ticket.status not in CLOSED_STATUSES:
            try:
                ticket_handoff(
                    ticket=ticket,
                    actor=Actor.copilot(),
                    reason=f"The pipeline failed: {error}"[:500],
                )
            except InvalidTransitionError:
                logger.warning("ticket %s could not be handed off after a failure", ticket.pk)
    # Close the draft stream: a watched draft's text is withdrawn from the customer's view.
    _publish_safely(
        message.ticket_id,
        {"type": "final", "draft_id": None, "decision": Decision.HANDED_OFF,
         "reason": HandoffReason.PIPELINE_FAILED, "status": DraftStatus.FAILED, "body": ""},
    )  # fmt: skip


# --- agents' actions on drafts ------------------------------------------------------------


@transaction.atomic
def draft_send(*, draft: Draft, actor: User, body: str | None = None) -> Draft:
    """Send a pending draft (or the agent's edited `body`) to the customer as the agent.

    Compare-and-set: a draft already sent, rejected or superseded raises ConflictError and
    nothing is sent. By email too for an email ticket.
    """
    text = draft.body if body is None else body
    if not text.strip():
        raise ValidationError("the reply is empty", field="body")
    claimed = Draft.objects.filter(pk=draft.pk, status=DraftStatus.PENDING, is_current=True).update(
        status=DraftStatus.SENT, acted_by=actor
    )
    if claimed != 1:
        current = Draft.objects.filter(pk=draft.pk).values_list("status", flat=True).first()
        raise ConflictError(f"draft {draft.pk} is {current}; only a pending draft can be sent")
    ticket = ticket_lock(ticket_id=draft.ticket_id)
    sent = _reply_post(
        ticket=ticket,
        body=text,
        author_kind=AuthorKind.AGENT,
        actor=Actor.for_user(actor),
        author_user=actor,
    )
    Draft.objects.filter(pk=draft.pk).update(sent_message_id=sent.pk)
    draft.refresh_from_db()
    if text == draft.body:
        _accepted_link_record(draft)
    return draft


# An agent sending a draft as it is vouches that its first article answers its intent; a few
# such acceptances make a full-strength link (retrieval boost, confidence feature).
ACCEPTED_LINK_STEP = 0.25


def _accepted_link_record(draft: Draft) -> None:
    if not draft.intent or not draft.citations:
        return
    article = articles_by_external_id(external_ids=[draft.citations[0]["external_id"]]).get(
        draft.citations[0]["external_id"]
    )
    if article is None:  # deleted since the draft was written
        return
    link, created = IntentArticleLink.objects.get_or_create(
        intent_name=draft.intent,
        article=article,
        source=LinkSource.ACCEPTED_DRAFT,
        defaults={"weight": ACCEPTED_LINK_STEP},
    )
    if not created:
        IntentArticleLink.objects.filter(pk=link.pk).update(
            weight=Least(F("weight") + ACCEPTED_LINK_STEP, Value(1.0))
        )


@transaction.atomic
def draft_reject(*, draft: Draft, actor: User, reason: str) -> Draft:
    """Reject a pending draft (nothing is sent); compare-and-set like `draft_send`."""
    claimed = Draft.objects.filter(pk=draft.pk, status=DraftStatus.PENDING).update(
        status=DraftStatus.REJECTED,
        acted_by=actor,
        reason_detail=f"{draft.reason_detail}\nrejected: {reason}".strip()[:5000],
    )
    if claimed != 1:
        current = Draft.objects.filter(pk=draft.pk).values_list("status", flat=True).first()
        raise ConflictError(f"draft {draft.pk} is {current}; only a pending draft can be rejected")
    draft.refresh_from_db()
    return draft


def draft_regenerate(*, ticket: Ticket, actor: User | None) -> Draft:
    """A fresh draft for the ticket's latest customer message; the previous current draft
    is kept as superseded. Never sent on its own: it waits for the agent (status pending).
    """
    message = customer_message_latest(ticket_id=ticket.pk)
    if message is None:
        raise NotFoundError(f"ticket #{ticket.pk} has no customer message to answer")
    prompt = prompt_template_ensure_default()
    _publish_safely(ticket.pk, {"type": "start", "message_id": message.pk})
    stream = _DraftStream(ticket.pk)
    composition = draft_compose(
        text=message.body,
        prompt=prompt,
        ticket_id=ticket.pk,
        message_id=message.pk,
        publish=stream,
        use_cache=False,  # the agent asked for a new one, not the same one again
    )
    _flush_safely(stream)
    fields = composition.draft_fields()
    if fields["decision"] == Decision.AUTO_SENT:
        fields.update(
            decision=Decision.NEEDS_REVIEW,
            reason=HandoffReason.AGENT_REQUESTED,
            reason_detail="regenerated at an agent's request; confident enough to auto-send",
        )
    if fields["status"] != DraftStatus.NOT_DRAFTED:
        fields["status"] = DraftStatus.PENDING
    with transaction.atomic():
        ticket_lock(ticket_id=ticket.pk)
        previous = (
            Draft.objects.select_for_update().filter(message=message, is_current=True).first()
        )
        generation = (
            Draft.objects.filter(message=message).aggregate(g=Max("generation"))["g"] or 0
        ) + 1
        if previous is not None:
            Draft.objects.filter(pk=previous.pk).update(
                is_current=False,
                status=(
                    DraftStatus.SUPERSEDED
                    if previous.status in (DraftStatus.PENDING, DraftStatus.NOT_DRAFTED)
                    else previous.status
                ),
            )
        draft = Draft.objects.create(
            ticket=ticket, message=message, generation=generation, acted_by=actor, **fields
        )
    _publish_final(draft)
    return draft


@transaction.atomic
def ticket_takeover(*, ticket: Ticket, actor: User) -> Takeover:
    """The agent owns the ticket: the copilot drafts and sends nothing more for it.
    Idempotent; also assigns the ticket to the agent."""
    takeover, _ = Takeover.objects.get_or_create(ticket=ticket, defaults={"agent": actor})
    if ticket.status != TicketStatus.RESOLVED and ticket.assignee_id != actor.pk:
        ticket_assign(
            ticket=ticket, assignee=actor, actor=Actor.for_user(actor), reason="took over"
        )
    return takeover


@transaction.atomic
def ticket_handback(*, ticket: Ticket, actor: User) -> bool:
    """The copilot may draft for the ticket again (from its next customer message)."""
    deleted, _ = Takeover.objects.filter(ticket=ticket).delete()
    return deleted > 0
