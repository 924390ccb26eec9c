"""What of a customer's personal data lives in tickets' own tables, and how it is erased.

apps/privacy decides when (a customer's request, a retention period) and calls the other
apps for the copies they keep (drafts, model-call text, caches, training examples). Rows
stay and only their text goes, so tickets, messages and every count built on them add up.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.core.exceptions import NotFoundError, ValidationError
from apps.core.text import ascii_digits, text_stripped
from apps.tickets.models import (
    AuthorKind,
    Channel,
    Customer,
    CustomerIdentity,
    Message,
    Ticket,
    TicketEvent,
    TicketStatus,
)
from apps.tickets.services.tickets import Actor, ticket_resolve

ERASED = "(erased)"
# What a widget visitor said about themselves without the site vouching for it.
VISITOR_CLAIMS = ("claimed_name", "claimed_email", "claimed_user_id")


@dataclass
class Footprint:
    """Where a customer's data is in tickets, and the values other apps may have copied."""

    customer_ids: list[int] = field(default_factory=list)
    ticket_ids: list[int] = field(default_factory=list)
    message_ids: list[int] = field(default_factory=list)
    # Bodies and subjects as stored: the text that drafts, caches and examples were made of.
    texts: list[str] = field(default_factory=list)
    # What identifies them: addresses, names, external ids, what they claimed in the widget.
    identifiers: list[str] = field(default_factory=list)


def customers_find(*, reference: str) -> list[tuple[Customer, str]]:
    """The customers `reference` names, each with how it was found.

    A number is a customer id; an address finds the customer with that email, the one whose
    email identity it is, and the widget visitors who gave it (claimed or signed) on a
    message; anything else is an external id. Raises NotFoundError when none matches.
    """
    reference = reference.strip()
    if not reference:
        raise ValidationError("name the customer: an id, an email address or an external id")
    found: dict[int, str] = {}
    if ascii_digits(reference):
        found.update(
            (pk, "id")
            for pk in Customer.objects.filter(pk=int(reference)).values_list("pk", flat=True)
        )
    elif "@" in reference:
        email = reference.lower()
        for pk in Customer.objects.filter(email=email).values_list("pk", flat=True):
            found.setdefault(pk, "email")
        for pk in CustomerIdentity.objects.filter(identifier__iexact=email).values_list(
            "customer_id", flat=True
        ):
            found.setdefault(pk, "email identity")
        gave_it = Message.objects.filter(author_kind=AuthorKind.CUSTOMER).filter(
            Q(metadata__claimed_email__iexact=email)
            | Q(metadata__identity__email__iexact=email)
            | Q(metadata__email__from__iexact=email)
        )
        for pk in gave_it.values_list("ticket__customer_id", flat=True).distinct():
            found.setdefault(pk, "gave this address on a message")
    else:
        found.update(
            (pk, "external id")
            for pk in Customer.objects.filter(external_id=reference).values_list("pk", flat=True)
        )
    if not found:
        raise NotFoundError(f"no customer matches {reference!r}")
    customers = Customer.objects.in_bulk(list(found))
    return [(customers[pk], why) for pk, why in sorted(found.items())]


def customer_footprint(*, customers: Collection[Customer]) -> Footprint:
    """Everything of these customers that tickets hold, read before anything is erased."""
    footprint = Footprint(customer_ids=sorted(customer.pk for customer in customers))
    for customer in customers:
        footprint.identifiers += [customer.email, customer.name, customer.external_id]
    footprint.identifiers += CustomerIdentity.objects.filter(
        customer_id__in=footprint.customer_ids
    ).values_list("identifier", flat=True)
    tickets = Ticket.objects.filter(customer_id__in=footprint.customer_ids).order_by("pk")
    for pk, subject in tickets.values_list("pk", "subject"):
        footprint.ticket_ids.append(pk)
        footprint.texts.append(subject)
    messages = Message.objects.filter(ticket_id__in=footprint.ticket_ids).order_by("pk")
    for pk, body, metadata in messages.values_list("pk", "body", "metadata"):
        footprint.message_ids.append(pk)
        footprint.texts.append(body)
        footprint.identifiers += [str(metadata.get(claim, "")) for claim in VISITOR_CLAIMS]
        identity = metadata.get("identity") or {}
        footprint.identifiers += [str(identity.get(key, "")) for key in ("email", "name")]
        footprint.identifiers.append(str((metadata.get("email") or {}).get("from", "")))
    footprint.texts = _distinct(footprint.texts)
    footprint.identifiers = _distinct(footprint.identifiers)
    return footprint


def _distinct(values: list[str]) -> list[str]:
    return list(dict.fromkeys(value for value in values if value and value != ERASED))


@transaction.atomic
def tickets_text_erase(*, ticket_ids: Collection[int], resolve: bool = False) -> dict[str, int]:
    """Empty the subject, every message's body, attachments' names and metadata, and the
    free text of the ticket's audit trail; mark the tickets erased. With `resolve`, a ticket
    still open is resolved first (nobody can work on a conversation whose text is gone)."""
    tickets = list(Ticket.objects.select_for_update().filter(pk__in=ticket_ids).order_by("pk"))
    if resolve:
        for ticket in tickets:
            if ticket.status != TicketStatus.RESOLVED:
                ticket_resolve(ticket=ticket, actor=Actor.system(), reason="personal data erased")
    now = timezone.now()
    ids = [ticket.pk for ticket in tickets]
    Ticket.objects.filter(pk__in=ids).update(subject=ERASED, erased_at=now)
    messages = 0
    for message in Message.objects.filter(ticket_id__in=ids).only("pk", "metadata"):
        Message.objects.filter(pk=message.pk).update(
            body=ERASED,
            attachments=[],
            metadata=text_stripped(message.metadata),
            pipeline_error="",
        )
        messages += 1
    events = 0
    for event in TicketEvent.objects.filter(ticket_id__in=ids).only("pk", "data"):
        TicketEvent.objects.filter(pk=event.pk).update(reason="", data=text_stripped(event.data))
        events += 1
    return {"tickets": len(ids), "messages": messages, "ticket_events": events}


@transaction.atomic
def customers_anonymise(*, customer_ids: Collection[int]) -> dict[str, int]:
    """Blank the customers' name, email and external id and drop their channel identities.
    The rows stay (their tickets point at them), marked erased."""
    identities, _ = CustomerIdentity.objects.filter(customer_id__in=customer_ids).delete()
    customers = Customer.objects.filter(pk__in=customer_ids).update(
        name="", email="", external_id="", erased_at=timezone.now()
    )
    return {"customers": customers, "customer_identities": identities}


def tickets_expired(*, resolved_before: datetime, limit: int) -> list[int]:
    """Resolved tickets untouched since `resolved_before` that still hold text."""
    return list(
        Ticket.objects.filter(
            status=TicketStatus.RESOLVED,
            resolved_at__lt=resolved_before,
            updated_at__lt=resolved_before,
        )
        # Never erased, or written to again since (a reopened conversation).
        .filter(Q(erased_at__isnull=True) | Q(erased_at__lt=F("updated_at")))
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )


@transaction.atomic
def widget_visitor_data_purge(*, before: datetime) -> dict[str, int]:
    """Forget widget visitors older than `before`: their channel identities (a visitor
    token outlives none of them) and what they claimed about themselves on messages."""
    identities, _ = CustomerIdentity.objects.filter(
        channel=Channel.WIDGET, created_at__lt=before
    ).delete()
    claims = 0
    with_claims = Message.objects.filter(
        channel=Channel.WIDGET, created_at__lt=before, metadata__has_any_keys=VISITOR_CLAIMS
    )
    for message in with_claims.only("pk", "metadata"):
        metadata = {k: v for k, v in message.metadata.items() if k not in VISITOR_CLAIMS}
        Message.objects.filter(pk=message.pk).update(metadata=metadata)
        claims += 1
    return {"widget_identities": identities, "visitor_claims": claims}


def ticket_events_purge(*, before: datetime) -> int:
    """Delete the tickets' audit-trail entries older than `before`."""
    deleted, _ = TicketEvent.objects.filter(at__lt=before).delete()
    return deleted
