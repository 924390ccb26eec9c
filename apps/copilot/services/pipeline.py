"""The copilot pipeline task's service: one customer message in, one draft saved and acted on.

`pipeline_run` loads the conversation before the message (bounded), composes a draft
(apps.copilot.pipeline) without any lock, then locks the ticket, checks that nothing changed
(a newer customer message arrived, an agent switched drafts off) and saves and acts in one
transaction. One draft per message: a rerun after a crash finds it and does nothing.

A ticket that is with a person (handed off, or taken over by an agent) still gets a draft
for each customer message, for that person: it is never sent on its own, and the customer
never watches it being written. An agent can switch these drafts off per ticket.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Subquery

from apps.copilot.events import draft_written
from apps.copilot.metrics import auto_send_metrics_record, draft_metrics_record
from apps.copilot.models import AssistOff, Decision, Draft, DraftStatus, HandoffReason, Takeover
from apps.copilot.pipeline.compose import draft_compose
from apps.copilot.pipeline.context import Conversation, Turn
from apps.copilot.pipeline.record import Composition
from apps.copilot.selectors import draft_for_message
from apps.copilot.services.erasure import draft_streams_forget
from apps.copilot.services.experiments import drafting_setup
from apps.copilot.services.replies import reply_post
from apps.copilot.services.stream import DraftStream, flush_safely, publish_final, publish_safely
from apps.core.exceptions import InvalidTransitionError
from apps.core.leases import lease
from apps.core.logcontext import log_context_add
from apps.core.tracing import trace_id_current
from apps.llm.router import router_warm
from apps.llm.services import llm_calls_text_erase
from apps.safety.pii import analyzer_warm
from apps.tickets.models import (
    AuthorKind,
    Channel,
    Message,
    PipelineStatus,
    Ticket,
    TicketStatus,
)
from apps.tickets.selectors import (
    conversation_before,
    first_customer_message,
    message_get,
    ticket_lock,
)
from apps.tickets.services import (
    PIPELINE_LEASE,
    Actor,
    message_pipeline_advance,
    message_triage_record,
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


def pipeline_warm() -> None:
    """Pays a process's one-time costs before its first customer message: litellm's import
    and Router, the embedding model, the active classifier, the PII analyzer and its spaCy
    model. Reads only; nothing is stored."""
    router_warm()
    triage_warm()
    analyzer_warm()


def _ticket_holds(ticket: Ticket, message: Message) -> tuple[str | None, tuple[str, str] | None]:
    """(why the copilot must not draft for this message now, or None; (reason, detail) when
    a person has the ticket, so drafts are for them and never sent, or None), read in one
    statement: the run asks before drafting and again before acting."""
    state = (
        Ticket.objects.filter(pk=ticket.pk)
        .annotate(
            assist_off=Exists(AssistOff.objects.filter(ticket_id=OuterRef("pk"))),
            taken_over=Exists(Takeover.objects.filter(ticket_id=OuterRef("pk"))),
            latest=Subquery(
                Message.objects.filter(ticket_id=OuterRef("pk"), author_kind=AuthorKind.CUSTOMER)
                .order_by("-id")
                .values("id")[:1]
            ),
        )
        .values("assist_off", "taken_over", "latest")
        .get()
    )
    skip = None
    if state["assist_off"]:
        skip = "an agent switched the copilot's drafts off for this ticket"
    elif state["latest"] is not None and state["latest"] != message.pk:
        skip = f"a newer customer message (#{state['latest']}) arrived"
    person = None
    if state["taken_over"]:
        person = (HandoffReason.AGENT_TOOK_OVER, "an agent took the ticket over")
    elif ticket.status in CLOSED_STATUSES:
        person = (HandoffReason.WITH_AGENT, f"the ticket is {ticket.status}")
    return skip, person


def conversation_of(message: Message) -> Conversation:
    """The message and the customer-visible turns before it (at most
    COPILOT_CONTEXT_MAX_TURNS of them, newest kept)."""
    earlier, count = conversation_before(message=message, limit=settings.COPILOT_CONTEXT_MAX_TURNS)
    return Conversation(
        message=message.body,
        earlier=tuple(Turn(role=m.author_kind, text=m.body) for m in earlier),
        earlier_count=count,
        sender_verified=sender_verified(message),
    )


def sender_verified(message: Message) -> bool:
    """An API integration vouches for its customers; a widget visitor is verified when the
    site signed their identity; an email's From, and an anonymous visitor, are claims."""
    if message.channel == Channel.API:
        return True
    if message.channel == Channel.WIDGET:
        first = first_customer_message(ticket_id=message.ticket_id)
        identity = ((first.metadata if first else {}) or {}).get("widget", {}).get("identity")
        return bool(isinstance(identity, dict) and identity.get("verified"))
    return False


def pipeline_run(*, message_id: int) -> Draft | None:
    """Run the copilot for one customer message; returns its draft (None when skipped).

    Idempotent: a message that already has a draft gets it back untouched; one that is done,
    failed or gone returns None; one that a live run has (a second delivery of it) is left
    to that run (None). The run holds a lease on the message (apps/core/leases.py): if its
    worker dies, the sweep delivers the message again once the lease expires. No lock is held
    while the model writes; the ticket is then locked and re-checked before the draft is
    saved and acted on (auto-send, review, handoff).
    """
    with lease(PIPELINE_LEASE, message_id) as mine:
        if not mine:
            logger.info("message %s: a live run has it already; this delivery ends", message_id)
            return None
        return _pipeline_run(message_id)


def _pipeline_run(message_id: int) -> Draft | None:
    message = message_get(message_id=message_id)
    if message is None or message.author_kind != AuthorKind.CUSTOMER:
        return None
    log_context_add(ticket_id=message.ticket_id, message_id=message_id)
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
    skip, person = _ticket_holds(ticket, message)
    if skip is not None:
        message_pipeline_advance(
            message_id=message_id,
            from_statuses=(PipelineStatus.PROCESSING,),
            to_status=PipelineStatus.DONE,
            error=f"not drafted: {skip}",
        )
        return None
    setup = drafting_setup(ticket_id=ticket.pk)
    publish_safely(ticket.pk, {"type": "start", "message_id": message_id})
    stream = DraftStream(ticket.pk, ticket.channel)
    composition = draft_compose(
        conversation=conversation_of(message),
        prompt=setup.prompt,
        policy=setup.policy,
        use_cache=setup.use_cache,
        ticket_id=ticket.pk,
        message_id=message_id,
        customer_id=ticket.customer_id,
        publish=stream,
        # A draft for a person is never sent: the customer never watches it being written.
        announce=stream.announce if person is None else None,
        stream_wanted=stream.wanted,
    )
    flush_safely(stream)
    composition.experiment_arm_id = setup.arm_id
    composition.trace_id = trace_id_current()
    composition.shown_while_drafting = stream.shown
    draft = _draft_save_and_act(message=message, composition=composition)
    if draft is None:  # the customer's data was erased while the model wrote
        draft_streams_forget(ticket_ids=[ticket.pk])
        return None
    publish_final(draft)
    logger.info(
        "draft %s for message %s: %s%s",
        draft.pk, message_id, draft.decision, f" ({draft.reason})" if draft.reason else "",
    )  # fmt: skip
    return draft


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


def _for_person(fields: dict, reason: str, detail: str) -> dict:
    """A composition's fields as a draft kept for the person who has the ticket."""
    if fields["decision"] == Decision.HANDED_OFF:
        fields["reason_detail"] = f"{detail}. {fields['reason_detail']}".strip()
    else:
        would = "auto-sent it" if fields["decision"] == Decision.AUTO_SENT else "asked for review"
        fields.update(reason=reason, reason_detail=f"{detail}; the copilot would have {would}")
    fields["decision"] = Decision.HANDED_OFF
    if fields["status"] != DraftStatus.NOT_DRAFTED:
        fields["status"] = DraftStatus.PENDING
    return fields


@transaction.atomic
def _draft_save_and_act(*, message: Message, composition: Composition) -> Draft | None:
    ticket = ticket_lock(ticket_id=message.ticket_id)
    if ticket.erased_at is not None and message.created_at <= ticket.erased_at:
        # Erased meanwhile (apps/privacy): keep nothing of what was drafted from it.
        llm_calls_text_erase(ticket_ids=[ticket.pk])
        _pipeline_done(message.pk)
        return None
    existing = draft_for_message(message_id=message.pk)
    if existing is not None:  # a concurrent run won while this one drafted
        return existing
    _triage_store(message, ticket, composition)
    fields = composition.draft_fields()
    skip, person = _ticket_holds(ticket, message)
    if skip is not None:
        fields["status"] = DraftStatus.SUPERSEDED
        fields["reason_detail"] = f"not acted on: {skip}. {fields['reason_detail']}".strip()
        if fields["decision"] == Decision.AUTO_SENT:
            fields.update(decision=Decision.NEEDS_REVIEW, reason=HandoffReason.NEWER_MESSAGE)
    elif person is not None:
        fields = _for_person(fields, *person)
    draft = Draft.objects.create(ticket=ticket, message=message, generation=1, **fields)
    log_context_add(draft_id=draft.pk)
    if skip is None:
        # This draft answers the earlier questions still open too: their drafts are void.
        Draft.objects.filter(
            ticket=ticket, message_id__lt=message.pk, status=DraftStatus.PENDING
        ).update(status=DraftStatus.SUPERSEDED)
    if skip is None and person is None:
        _act(ticket, draft)
    draft_written(draft)  # after acting: draft.ready says whether it was sent
    _pipeline_done(message.pk)
    return draft


def _act(ticket: Ticket, draft: Draft) -> None:
    """Auto-send the draft, or ask for a review, or hand the ticket to a person."""
    copilot = Actor.copilot()
    if draft.decision == Decision.AUTO_SENT:
        sent = reply_post(
            ticket=ticket, body=draft.body, author_kind=AuthorKind.COPILOT, actor=copilot
        )
        Draft.objects.filter(pk=draft.pk).update(
            status=DraftStatus.AUTO_SENT, sent_message_id=sent.pk
        )
        draft.status, draft.sent_message_id = DraftStatus.AUTO_SENT, sent.pk
        auto_send_metrics_record(channel=ticket.channel)
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


def _pipeline_done(message_id: int) -> None:
    message_pipeline_advance(
        message_id=message_id, from_statuses=RUNNABLE, to_status=PipelineStatus.DONE
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
            failed = Draft.objects.create(
                ticket=ticket,
                message=message,
                generation=1,
                status=DraftStatus.FAILED,
                decision=Decision.HANDED_OFF,
                reason=HandoffReason.PIPELINE_FAILED,
                reason_detail=error[:2000],
            )
            draft_metrics_record(failed)
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
    publish_safely(
        message.ticket_id,
        {"type": "final", "draft_id": None, "decision": Decision.HANDED_OFF,
         "reason": HandoffReason.PIPELINE_FAILED, "status": DraftStatus.FAILED, "body": ""},
    )  # fmt: skip
