"""Agents' actions on drafts: send (as written or edited), reject, and regenerate.

Regenerating calls the model, so it never runs in the web request that asks for it: the
request schedules `copilot.draft_regenerate` on the pipeline queue (after commit) and answers
at once; the task composes the new draft and streams it on the ticket's draft stream, like
the pipeline's own.
"""

from __future__ import annotations

import logging

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import F, Max, Value
from django.db.models.functions import Least

from apps.accounts.models import User
from apps.copilot.events import draft_written
from apps.copilot.models import (
    Decision,
    Draft,
    DraftStatus,
    HandoffReason,
    IntentArticleLink,
    LinkSource,
)
from apps.copilot.pipeline.compose import draft_compose
from apps.copilot.services.experiments import drafting_setup
from apps.copilot.services.pipeline import conversation_of
from apps.copilot.services.replies import reply_post
from apps.copilot.services.stream import DraftStream, flush_safely, publish_final, publish_safely
from apps.core.exceptions import (
    ConflictError,
    NotFoundError,
    ServiceUnavailableError,
    ValidationError,
)
from apps.core.tracing import trace_id_current
from apps.knowledge.selectors import articles_by_external_id
from apps.tickets.models import AuthorKind, Message, Ticket
from apps.tickets.selectors import customer_message_latest, message_get, ticket_lock
from apps.tickets.services import Actor

logger = logging.getLogger(__name__)

# The task, scheduled by name (tasks import services, not the other way round).
REGENERATE_TASK = "copilot.draft_regenerate"
REGENERATE_QUEUE = "pipeline"
# An agent is waiting on the answer: a broker blip is retried briefly, then they are told.
REGENERATE_PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2}


@transaction.atomic
def draft_send(
    *, draft: Draft, actor: User | None, body: str | None = None, via: Actor | None = None
) -> Draft:
    """Send a pending draft (or the agent's edited `body`) to the customer as the agent.
    `actor` None: an agent working in another tool, through the API key `via`.

    Compare-and-set: a draft already sent, rejected or superseded raises ConflictError and
    nothing is sent. By email too for an email ticket.
    """
    who = Actor.for_user(actor) if actor is not None else via
    if who is None:
        raise ValueError("draft_send needs the agent (actor) or the integration (via)")
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
    sent = reply_post(
        ticket=ticket,
        body=text,
        author_kind=AuthorKind.AGENT,
        actor=who,
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
def draft_reject(*, draft: Draft, actor: User | None, reason: str) -> Draft:
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


def draft_regenerate_request(*, ticket: Ticket, actor: User | None) -> Message:
    """Ask for a fresh draft of the reply to the ticket's latest customer message; returns
    that message. The task is published when the caller's transaction commits (at once
    outside one); if the broker refuses it, ServiceUnavailableError says so then.
    """
    message = customer_message_latest(ticket_id=ticket.pk)
    if message is None:
        raise NotFoundError(f"ticket #{ticket.pk} has no customer message to answer")
    actor_id = actor.pk if actor is not None else None
    transaction.on_commit(lambda: _regenerate_schedule(message.pk, actor_id))
    return message


def _regenerate_schedule(message_id: int, actor_id: int | None) -> None:
    try:
        current_app.send_task(
            REGENERATE_TASK,
            kwargs={"message_id": message_id, "actor_id": actor_id},
            queue=REGENERATE_QUEUE,
            soft_time_limit=settings.PIPELINE_TIME_LIMIT_SECONDS,
            time_limit=settings.PIPELINE_HARD_TIME_LIMIT_SECONDS,
            retry=True,
            retry_policy=REGENERATE_PUBLISH_RETRY,
        )
    except Exception as error:  # any broker failure: the agent is told and can try again
        logger.warning("regenerate task for message %s not published: %s", message_id, error)
        raise ServiceUnavailableError(
            "the new draft could not be queued (the task broker is unavailable); try again"
        ) from error


def draft_regenerate(*, message_id: int, actor_id: int | None) -> Draft | None:
    """A fresh draft for the message (the regenerate task's work); the previous current draft
    is kept as superseded. Never sent on its own: it waits for the agent (status pending).
    None when the message is gone or no longer the ticket's latest customer message (the
    newer one has its own draft). Runs the model outside any transaction.
    """
    message = message_get(message_id=message_id)
    if message is None:
        return None
    ticket = message.ticket
    latest = customer_message_latest(ticket_id=ticket.pk)
    if latest is None or latest.pk != message.pk:
        return None
    publish_safely(ticket.pk, {"type": "start", "message_id": message.pk})
    stream = DraftStream(ticket.pk)
    setup = drafting_setup(ticket_id=ticket.pk)
    composition = draft_compose(
        conversation=conversation_of(message),
        prompt=setup.prompt,
        policy=setup.policy,
        ticket_id=ticket.pk,
        message_id=message.pk,
        publish=stream,
        use_cache=False,  # the agent asked for a new one, not the same one again
    )
    flush_safely(stream)
    composition.experiment_arm_id = setup.arm_id
    composition.trace_id = trace_id_current()
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
            ticket=ticket, message=message, generation=generation, acted_by_id=actor_id, **fields
        )
        draft_written(draft)
    publish_final(draft)
    return draft
