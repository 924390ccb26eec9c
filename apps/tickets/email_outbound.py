"""Outbound email: send an agent or copilot reply with headers that keep the thread."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.message import make_msgid
from django.db import transaction

from apps.accounts.models import User
from apps.core.exceptions import ServiceUnavailableError, ValidationError
from apps.tickets.models import AuthorKind, Channel, Message, Ticket
from apps.tickets.services import Actor, message_add

logger = logging.getLogger(__name__)

MAX_REFERENCES = 20


@transaction.atomic
def email_reply_send(
    *,
    ticket: Ticket,
    body: str,
    author_kind: AuthorKind,
    actor: Actor,
    author_user: User | None = None,
) -> Message:
    """Store a reply on the ticket and send it to the customer by email, threaded under the
    latest email of the conversation (In-Reply-To, References) with a Message-ID of our own,
    which threads the customer's answer back into this ticket.

    The send happens inside the transaction: if the mail backend fails, nothing is stored and
    ServiceUnavailableError is raised, so a reply is never recorded as sent when it was not.
    """
    if author_kind not in (AuthorKind.AGENT, AuthorKind.COPILOT):
        raise ValidationError("only an agent or the copilot sends replies", field="author_kind")
    recipient = ticket.customer.email
    if not recipient:
        raise ValidationError(
            f"ticket #{ticket.pk}'s customer has no email address", field="customer.email"
        )
    parent = (
        Message.objects.filter(ticket=ticket, channel=Channel.EMAIL)
        .exclude(channel_message_id="")
        .order_by("-id")
        .first()
    )
    references: list[str] = []
    if parent is not None:
        earlier = (parent.metadata.get("email") or {}).get("references") or []
        references = [*earlier, parent.channel_message_id][-MAX_REFERENCES:]
    domain = settings.SUPPORT_EMAIL.rpartition("@")[2] or "localhost"
    message_id = make_msgid(domain=domain).strip("<>")
    subject = ticket.subject or "Your request"
    if not subject.lower().startswith("re:"):
        subject = f"Re: {subject}"
    message = message_add(
        ticket=ticket,
        author_kind=author_kind,
        body=body,
        actor=actor,
        channel=Channel.EMAIL,
        author_user=author_user,
        channel_message_id=message_id,
        metadata={
            "email": {
                "message_id": message_id,
                "in_reply_to": parent.channel_message_id if parent else "",
                "references": references,
                "to": recipient,
                "subject": subject,
            }
        },
    )
    headers = {"Message-ID": f"<{message_id}>"}
    if parent is not None:
        headers["In-Reply-To"] = f"<{parent.channel_message_id}>"
        headers["References"] = " ".join(f"<{ref}>" for ref in references)
    email = EmailMessage(
        subject=subject,
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[recipient],
        reply_to=[settings.SUPPORT_EMAIL],
        headers=headers,
    )
    try:
        email.send(fail_silently=False)
    except Exception as error:  # SMTP down, refused, timeout: the caller may retry
        logger.warning("reply on ticket %s not sent: %s", ticket.pk, error)
        raise ServiceUnavailableError(f"the reply could not be sent: {error}") from error
    return message
