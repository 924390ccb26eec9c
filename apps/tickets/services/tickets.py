"""Tickets and messages, and the ticket status machine.

Every status change goes through `_ticket_transition`: a compare-and-set update
(`filter(id=…, status=old).update(…) == 1`) plus one TicketEvent, in the caller's transaction.
Every new customer message schedules the copilot pipeline once the transaction commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import ApiKey, User
from apps.core.exceptions import InvalidTransitionError, ValidationError
from apps.tickets.models import (
    ActorKind,
    AuthorKind,
    BodyFormat,
    Channel,
    Customer,
    EventKind,
    Message,
    PipelineStatus,
    Ticket,
    TicketEvent,
    TicketPriority,
    TicketStatus,
)
from apps.tickets.services.events import (
    message_created_emit,
    ticket_created_emit,
    ticket_status_emit,
)
from apps.tickets.services.pipeline import message_pipeline_schedule
from apps.tickets.sla import sla_targets


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


def _subject_from(body: str) -> str:
    first_line = next((line.strip() for line in body.splitlines() if line.strip()), "")
    return first_line[:120]


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
    first_response, resolution = sla_targets(priority)
    ticket = Ticket.objects.create(
        customer=customer,
        subject=subject,
        channel=channel,
        priority=priority,
        status=TicketStatus.NEW,
        status_changed_at=now,
        last_customer_message_at=now,
        source_api_key=source_api_key,
        first_response_due_at=now + first_response,
        resolution_due_at=now + resolution,
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
        announce=False,
    )
    ticket_created_emit(ticket, message)
    message_created_emit(message)
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
    if author_kind in (AuthorKind.AGENT, AuthorKind.COPILOT) and ticket.first_responded_at is None:
        touched["first_responded_at"] = now  # the first reply the customer got (SLA)
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
    announce: bool = True,
) -> Message:
    """Store a message; `announce`: its message.created event now (a new ticket sends it
    after its ticket.created)."""
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
    if announce:
        message_created_emit(message)
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
    if from_status == TicketStatus.RESOLVED:
        # Reopened: a new resolution target from now (the first reply was already given).
        changes["resolution_due_at"] = now + sla_targets(ticket.priority)[1]
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
    ticket_status_emit(ticket, from_status=from_status, reason=reason)
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


def message_triage_record(
    *,
    message: Message,
    intent: str,
    intent_confidence: float | None,
    intent_alternatives: list[dict[str, Any]],
    classifier_version_id: int | None,
    language: str,
) -> None:
    """Store one customer message's triage result (written by the copilot pipeline)."""
    Message.objects.filter(pk=message.pk).update(
        intent=intent[:100],
        intent_confidence=intent_confidence,
        intent_alternatives=intent_alternatives,
        classifier_version_id=classifier_version_id,
        language=language[:16],
    )
