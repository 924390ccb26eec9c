"""Writes of the widget app: opening a conversation for a visitor."""

from __future__ import annotations

from django.db import transaction

from apps.accounts.models import WidgetKey
from apps.tickets.models import Channel, Message, Ticket
from apps.tickets.services import Actor, ticket_create
from apps.widget.identity import VisitorIdentity, visitor_customer_resolve


def widget_conversation_start(
    *, widget_key: WidgetKey, origin: str, body: str, identity: VisitorIdentity
) -> tuple[Ticket, Message]:
    """Open a widget conversation with the visitor's first message, in one transaction.

    `identity` comes from `visitor_identity_check`: verified, the conversation is the signed
    customer's; otherwise a new anonymous customer's, with the claims kept on the message.
    Not idempotent (each call is a new conversation); schedules the copilot on commit.
    """
    metadata = {"site": widget_key.site_name, "origin": origin, **identity.metadata()}
    with transaction.atomic():
        customer = visitor_customer_resolve(identity=identity)
        return ticket_create(
            customer=customer,
            body=body,
            channel=Channel.WIDGET,
            actor=Actor.for_customer(customer),
            metadata={"widget": metadata},
        )
