"""Writes for customers, tickets and messages, and the ticket status machine.

Every status change goes through `_ticket_transition`: a compare-and-set update
(`filter(id=…, status=old).update(…) == 1`) plus one TicketEvent, in the caller's transaction.
Every new customer message schedules the copilot pipeline once the transaction commits.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

from celery import current_app
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.accounts.models import ApiKey, User
from apps.core.exceptions import ConflictError, InvalidTransitionError, ValidationError
from apps.tickets.models import (
    ActorKind,
    AuthorKind,
    BodyFormat,
    Channel,
    Customer,
    CustomerIdentity,
    EventKind,
    Message,
    PipelineStatus,
    Ticket,
    TicketEvent,
    TicketPriority,
    TicketStatus,
)

logger = logging.getLogger(__name__)

# The copilot pipeline's task, scheduled by name: tickets sits below copilot in the layering
# and must not import it. The name is the contract (apps/copilot/tasks.py registers it).
PIPELINE_TASK = "copilot.pipeline_run"
PIPELINE_QUEUE = "pipeline"
# A broker blip is retried briefly; a broker that stays down leaves the message for the sweep.
PIPELINE_PUBLISH_RETRY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}


@dataclass(frozen=True)
class Actor:
    """Who or what caused a change, as recorded in the audit trail."""

    kind: ActorKind
    id: str = ""

    @classmethod
    def system(cls) -> Actor:
        return cls(ActorKind.SYSTEM)

    @classmethod
    def copilot(cls) -> Actor:
        return cls(ActorKind.COPILOT)

    @classmethod
    def for_user(cls, user: User) -> Actor:
        return cls(ActorKind.AGENT, str(user.pk))

    @classmethod
    def for_api_key(cls, api_key: ApiKey) -> Actor:
        return cls(ActorKind.API_KEY, str(api_key.pk))

    @classmethod
    def for_customer(cls, customer: Customer) -> Actor:
        return cls(ActorKind.CUSTOMER, str(customer.pk))


# --- input rules ---------------------------------------------------------------------------


def message_body_clean(body: str, *, field: str = "body") -> str:
    """The body as stored: a non-empty string within MESSAGE_MAX_CHARS, without NUL bytes."""
    if not isinstance(body, str):
        raise ValidationError(f"{field} must be a string", field=field)
    if "\x00" in body:
        raise ValidationError(f"{field} must not contain NUL characters", field=field)
    if not body.strip():
        raise ValidationError(f"{field} must not be empty", field=field)
    limit = settings.MESSAGE_MAX_CHARS
    if len(body) > limit:
        raise ValidationError(
            f"{field} is {len(body)} characters long; the limit is {limit}", field=field
        )
    return body


def _email_clean(email: str, *, field: str) -> str:
    email = email.strip().lower()
    if not email:
        return ""
    try:
        validate_email(email)
    except DjangoValidationError:
        raise ValidationError(f"{field} is not a valid email address", field=field) from None
    return email


def _subject_from(body: str) -> str:
    first_line = next((line.strip() for line in body.splitlines() if line.strip()), "")
    return first_line[:120]


# --- customers -----------------------------------------------------------------------------


def customer_resolve(
    *,
    email: str = "",
    name: str = "",
    external_id: str = "",
    channel: Channel | None = None,
    identifier: str = "",
) -> Customer:
    """The customer known by `external_id`, else `email`, else a new one.

    A name or a missing email/external id is filled in on an existing customer. An email that
    already belongs to a customer with another external id is a conflict. Safe under
    concurrency: a creation that loses a unique-constraint race re-reads the winner.
    """
    email = _email_clean(email, field="customer.email")
    external_id = external_id.strip()
    name = name.strip()
    for attempt in range(2):
        customer = _customer_find(email=email, external_id=external_id)
        if customer is None:
            try:
                with transaction.atomic():
                    customer = Customer.objects.create(
                        email=email, name=name, external_id=external_id
                    )
            except IntegrityError:
                if attempt == 0:
                    continue  # created meanwhile by a concurrent request: find it now
                raise
        else:
            _customer_complete(customer, email=email, name=name, external_id=external_id)
        if channel is not None and identifier:
            _customer_identity_add(customer, channel=channel, identifier=identifier)
        return customer
    raise AssertionError("unreachable")  # pragma: no cover


def _customer_find(*, email: str, external_id: str) -> Customer | None:
    if external_id:
        customer = Customer.objects.filter(external_id=external_id).first()
        if customer is not None:
            return customer
    if email:
        customer = Customer.objects.filter(email=email).first()
        if customer is not None and external_id and customer.external_id:
            raise ConflictError(
                f"customer.email {email!r} belongs to a customer with another external_id",
                field="customer.email",
            )
        return customer
    return None


def _customer_complete(customer: Customer, *, email: str, name: str, external_id: str) -> None:
    updates: dict[str, str] = {}
    if email and not customer.email:
        if Customer.objects.filter(email=email).exclude(pk=customer.pk).exists():
            raise ConflictError(
                f"customer.email {email!r} belongs to another customer", field="customer.email"
            )
        updates["email"] = email
    if external_id and not customer.external_id:
        updates["external_id"] = external_id
    if name and not customer.name:
        updates["name"] = name
    if updates:
        Customer.objects.filter(pk=customer.pk).update(**updates, updated_at=timezone.now())
        for field, value in updates.items():
            setattr(customer, field, value)


def _customer_identity_add(customer: Customer, *, channel: Channel, identifier: str) -> None:
    CustomerIdentity.objects.get_or_create(
        channel=channel, identifier=identifier[:254], defaults={"customer": customer}
    )


# --- tickets and messages ------------------------------------------------------------------


@transaction.atomic
def ticket_create(
    *,
    customer: Customer,
    body: str,
    channel: Channel,
    actor: Actor,
    subject: str = "",
    priority: TicketPriority = TicketPriority.NORMAL,
    source_api_key: ApiKey | None = None,
    attachments: list[dict[str, Any]] | None = None,
    channel_message_id: str = "",
    metadata: dict[str, Any] | None = None,
) -> tuple[Ticket, Message]:
    """Open a ticket with the customer's first message; schedules the pipeline on commit."""
    body = message_body_clean(body)
    subject = subject.strip()[:255] or _subject_from(body)
    now = timezone.now()
    ticket = Ticket.objects.create(
        customer=customer,
        subject=subject,
        channel=channel,
        priority=priority,
        status=TicketStatus.NEW,
        status_changed_at=now,
        last_customer_message_at=now,
        source_api_key=source_api_key,
    )
    TicketEvent.objects.create(
        ticket=ticket,
        kind=EventKind.CREATED,
        from_status="",
        to_status=TicketStatus.NEW,
        actor_kind=actor.kind,
        actor_id=actor.id,
        reason=f"opened through {Channel(channel).label}",
    )
    message = _message_insert(
        ticket=ticket,
        author_kind=AuthorKind.CUSTOMER,
        body=body,
        channel=channel,
        attachments=attachments,
        channel_message_id=channel_message_id,
        metadata=metadata,
    )
    return ticket, message


@transaction.atomic
def message_add(
    *,
    ticket: Ticket,
    author_kind: AuthorKind,
    body: str,
    actor: Actor,
    channel: Channel | None = None,
    author_user: User | None = None,
    body_format: BodyFormat = BodyFormat.TEXT,
    attachments: list[dict[str, Any]] | None = None,
    channel_message_id: str = "",
    metadata: dict[str, Any] | None = None,
) -> Message:
    """Add a message to a ticket and move the ticket on.

    A customer message reopens a resolved ticket and brings an awaiting one back to `new`;
    an agent or copilot reply moves `new`/`needs_review` to `awaiting_customer`. A customer
    message schedules the pipeline on commit. The ticket row is locked for the duration, so
    concurrent messages on one ticket apply their transitions one after the other.
    """
    body = message_body_clean(body)
    ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
    now = timezone.now()
    message = _message_insert(
        ticket=ticket,
        author_kind=author_kind,
        body=body,
        channel=channel or Channel(ticket.channel),
        author_user=author_user,
        body_format=body_format,
        attachments=attachments,
        channel_message_id=channel_message_id,
        metadata=metadata,
    )
    touched: dict[str, Any] = {"updated_at": now}
    if author_kind == AuthorKind.CUSTOMER:
        touched["last_customer_message_at"] = now
    Ticket.objects.filter(pk=ticket.pk).update(**touched)
    if author_kind == AuthorKind.CUSTOMER:
        if ticket.status == TicketStatus.RESOLVED:
            _ticket_transition(
                ticket=ticket,
                to_status=TicketStatus.NEW,
                actor=actor,
                reason="the customer wrote again",
                verb="reopen",
                data={"message_id": message.pk},
            )
        elif ticket.status == TicketStatus.AWAITING_CUSTOMER:
            _ticket_transition(
                ticket=ticket,
                to_status=TicketStatus.NEW,
                actor=actor,
                reason="the customer replied",
                verb="bring back",
                data={"message_id": message.pk},
            )
    elif author_kind in (AuthorKind.AGENT, AuthorKind.COPILOT) and ticket.status in (
        TicketStatus.NEW,
        TicketStatus.NEEDS_REVIEW,
    ):
        _ticket_transition(
            ticket=ticket,
            to_status=TicketStatus.AWAITING_CUSTOMER,
            actor=actor,
            reason=f"{AuthorKind(author_kind).label.lower()} replied",
            verb="mark awaiting the customer",
            data={"message_id": message.pk},
        )
    return message


def _message_insert(
    *,
    ticket: Ticket,
    author_kind: AuthorKind,
    body: str,
    channel: Channel,
    author_user: User | None = None,
    body_format: BodyFormat = BodyFormat.TEXT,
    attachments: list[dict[str, Any]] | None = None,
    channel_message_id: str = "",
    metadata: dict[str, Any] | None = None,
) -> Message:
    is_customer = author_kind == AuthorKind.CUSTOMER
    message = Message.objects.create(
        ticket=ticket,
        author_kind=author_kind,
        author_user=author_user,
        channel=channel,
        body=body,
        body_format=body_format,
        attachments=attachments or [],
        channel_message_id=channel_message_id,
        metadata=metadata or {},
        pipeline_status=(
            PipelineStatus.UNSCHEDULED if is_customer else PipelineStatus.NOT_APPLICABLE
        ),
    )
    if is_customer:
        # robust: the response must not fail after the message is safely committed.
        transaction.on_commit(
            partial(message_pipeline_schedule, message_id=message.pk), robust=True
        )
    return message


# --- the status machine --------------------------------------------------------------------

ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    TicketStatus.NEW: frozenset(
        {
            TicketStatus.AWAITING_CUSTOMER,
            TicketStatus.NEEDS_REVIEW,
            TicketStatus.HANDED_OFF,
            TicketStatus.RESOLVED,
        }
    ),
    TicketStatus.AWAITING_CUSTOMER: frozenset(
        {
            TicketStatus.NEW,
            TicketStatus.NEEDS_REVIEW,
            TicketStatus.HANDED_OFF,
            TicketStatus.RESOLVED,
        }
    ),
    TicketStatus.NEEDS_REVIEW: frozenset(
        {TicketStatus.AWAITING_CUSTOMER, TicketStatus.HANDED_OFF, TicketStatus.RESOLVED}
    ),
    # A human owns it: the copilot does not take it back; the agent resolves it.
    TicketStatus.HANDED_OFF: frozenset({TicketStatus.RESOLVED}),
    TicketStatus.RESOLVED: frozenset({TicketStatus.NEW}),
}


def _ticket_transition(
    *,
    ticket: Ticket,
    to_status: TicketStatus,
    actor: Actor,
    reason: str,
    verb: str,
    data: dict[str, Any] | None = None,
) -> Ticket:
    """Compare-and-set the status from what the caller saw (`ticket.status`) and audit it."""
    from_status = ticket.status
    if to_status not in ALLOWED_TRANSITIONS[from_status]:
        allowed_from = sorted(
            s for s, targets in ALLOWED_TRANSITIONS.items() if to_status in targets
        )
        raise InvalidTransitionError(
            f"cannot {verb} ticket #{ticket.pk}: it is {from_status}; "
            f"that is possible only from {', '.join(allowed_from)}",
            field="status",
        )
    now = timezone.now()
    changes: dict[str, Any] = {"status": to_status, "status_changed_at": now, "updated_at": now}
    changes["resolved_at"] = now if to_status == TicketStatus.RESOLVED else None
    if Ticket.objects.filter(pk=ticket.pk, status=from_status).update(**changes) != 1:
        current = Ticket.objects.filter(pk=ticket.pk).values_list("status", flat=True).first()
        raise InvalidTransitionError(
            f"cannot {verb} ticket #{ticket.pk}: its status changed from {from_status} to "
            f"{current} meanwhile; reload it and try again",
            field="status",
        )
    TicketEvent.objects.create(
        ticket=ticket,
        kind=EventKind.STATUS_CHANGED,
        from_status=from_status,
        to_status=to_status,
        actor_kind=actor.kind,
        actor_id=actor.id,
        reason=reason[:500],
        data=data or {},
    )
    for field, value in changes.items():
        setattr(ticket, field, value)
    return ticket


@transaction.atomic
def ticket_assign(
    *, ticket: Ticket, assignee: User | None, actor: Actor, reason: str = ""
) -> Ticket:
    """Set (or clear, with None) the agent who owns a ticket. Refused on a resolved ticket."""
    if ticket.status == TicketStatus.RESOLVED:
        raise InvalidTransitionError(
            f"cannot assign ticket #{ticket.pk}: it is resolved; reopen it first", field="status"
        )
    previous = ticket.assignee_id
    updated = Ticket.objects.filter(pk=ticket.pk, status=ticket.status).update(
        assignee=assignee, updated_at=timezone.now()
    )
    if updated != 1:
        raise InvalidTransitionError(
            f"cannot assign ticket #{ticket.pk}: its status changed meanwhile; reload it",
            field="status",
        )
    TicketEvent.objects.create(
        ticket=ticket,
        kind=EventKind.ASSIGNED,
        from_status=ticket.status,
        to_status=ticket.status,
        actor_kind=actor.kind,
        actor_id=actor.id,
        reason=reason[:500],
        data={"from_assignee_id": previous, "to_assignee_id": assignee.pk if assignee else None},
    )
    ticket.assignee = assignee
    return ticket


@transaction.atomic
def ticket_handoff(*, ticket: Ticket, actor: Actor, reason: str) -> Ticket:
    """Hand the conversation to a human; the copilot stays out from now on. `reason` is required
    (low confidence, sensitive intent, customer asked for a human, model down…)."""
    if not reason.strip():
        raise ValidationError("a handoff needs a reason", field="reason")
    return _ticket_transition(
        ticket=ticket,
        to_status=TicketStatus.HANDED_OFF,
        actor=actor,
        reason=reason,
        verb="hand off",
    )


@transaction.atomic
def ticket_review_request(*, ticket: Ticket, actor: Actor, reason: str = "") -> Ticket:
    """The copilot drafted a reply that an agent must review before it is sent."""
    return _ticket_transition(
        ticket=ticket,
        to_status=TicketStatus.NEEDS_REVIEW,
        actor=actor,
        reason=reason,
        verb="request a review of",
    )


@transaction.atomic
def ticket_resolve(*, ticket: Ticket, actor: Actor, reason: str = "") -> Ticket:
    """Close the ticket. A new customer message (or `ticket_reopen`) opens it again."""
    return _ticket_transition(
        ticket=ticket, to_status=TicketStatus.RESOLVED, actor=actor, reason=reason, verb="resolve"
    )


@transaction.atomic
def ticket_reopen(*, ticket: Ticket, actor: Actor, reason: str = "") -> Ticket:
    """Open a resolved ticket again, as `new`: the pipeline decides what happens next."""
    if ticket.status != TicketStatus.RESOLVED:
        raise InvalidTransitionError(
            f"cannot reopen ticket #{ticket.pk}: it is {ticket.status}; only a resolved "
            "ticket can be reopened",
            field="status",
        )
    return _ticket_transition(
        ticket=ticket, to_status=TicketStatus.NEW, actor=actor, reason=reason, verb="reopen"
    )


# --- the pipeline hook ---------------------------------------------------------------------


def message_pipeline_schedule(*, message_id: int) -> bool:
    """Publish the pipeline task for a customer message; True when the broker took it.

    Runs after commit (never inside the transaction that stored the message). Any publish
    failure is logged and recorded on the message, which stays `unscheduled` for the sweep:
    the message itself is already safe. Publishing twice is harmless (the task is idempotent).
    """
    now = timezone.now()
    try:
        current_app.send_task(
            PIPELINE_TASK,
            kwargs={"message_id": message_id},
            queue=PIPELINE_QUEUE,
            retry=True,
            retry_policy=PIPELINE_PUBLISH_RETRY,
        )
    except Exception as error:  # any broker failure: the sweep retries later
        logger.warning("pipeline task for message %s not published: %s", message_id, error)
        Message.objects.filter(pk=message_id).update(
            pipeline_attempts=F("pipeline_attempts") + 1,
            pipeline_scheduled_at=now,
            pipeline_error=f"publish failed at {now.isoformat()}: {error}"[:2000],
        )
        return False
    Message.objects.filter(pk=message_id).update(
        pipeline_attempts=F("pipeline_attempts") + 1, pipeline_scheduled_at=now
    )
    # The worker may already have moved it past `queued`: only an unscheduled message moves.
    Message.objects.filter(pk=message_id, pipeline_status=PipelineStatus.UNSCHEDULED).update(
        pipeline_status=PipelineStatus.QUEUED, pipeline_error=""
    )
    return True


def message_pipeline_advance(
    *,
    message_id: int,
    from_statuses: Iterable[PipelineStatus],
    to_status: PipelineStatus,
    error: str = "",
) -> bool:
    """Compare-and-set a message's pipeline status; False (and nothing changed) when the
    message is gone or not in one of `from_statuses`. Safe to call twice."""
    now = timezone.now()
    changes: dict[str, Any] = {"pipeline_status": to_status, "pipeline_error": error[:2000]}
    if to_status in (PipelineStatus.AWAITING_TRIAGE, PipelineStatus.PROCESSING):
        changes["pipeline_started_at"] = now
    if to_status in (PipelineStatus.DONE, PipelineStatus.FAILED):
        changes["pipeline_finished_at"] = now
    updated = Message.objects.filter(pk=message_id, pipeline_status__in=list(from_statuses)).update(
        **changes
    )
    return updated == 1


def message_pipeline_sweep(
    *,
    unscheduled_after_seconds: float | None = None,
    queued_after_seconds: float | None = None,
    limit: int = 500,
) -> int:
    """Publish again the pipeline task of messages stuck before the pipeline; returns how many
    were published. `unscheduled` ones are retried soon (the broker was down); `queued` ones
    only after a long time (the broker lost the task). Idempotent and safe to run concurrently:
    the task itself is idempotent."""
    unscheduled_after = (
        settings.PIPELINE_SWEEP_UNSCHEDULED_AFTER_SECONDS
        if unscheduled_after_seconds is None
        else unscheduled_after_seconds
    )
    queued_after = (
        settings.PIPELINE_SWEEP_QUEUED_AFTER_SECONDS
        if queued_after_seconds is None
        else queued_after_seconds
    )
    now = timezone.now()
    unscheduled_cutoff = now - timedelta(seconds=unscheduled_after)
    queued_cutoff = now - timedelta(seconds=queued_after)
    stuck = Message.objects.filter(
        Q(
            pipeline_status=PipelineStatus.UNSCHEDULED,
            created_at__lte=unscheduled_cutoff,
        )
        & (Q(pipeline_scheduled_at__isnull=True) | Q(pipeline_scheduled_at__lte=unscheduled_cutoff))
        | Q(pipeline_status=PipelineStatus.QUEUED, pipeline_scheduled_at__lte=queued_cutoff)
    ).order_by("id")
    published = 0
    for message_id in stuck.values_list("id", flat=True)[:limit]:
        published += message_pipeline_schedule(message_id=message_id)
    return published


def ticket_triage_record(
    *, ticket: Ticket, intent: str, intent_confidence: float | None, language: str
) -> None:
    """Store the ticket-level triage result (used by the pipeline later)."""
    Ticket.objects.filter(pk=ticket.pk).update(
        intent=intent[:100],
        intent_confidence=intent_confidence,
        language=language[:16],
        updated_at=timezone.now(),
    )
