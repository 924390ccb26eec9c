"""Outbound email: send an agent or copilot reply with headers that keep the thread, through
an outbox so that a reply is recorded exactly when it is sent.

The reply and its OutboundEmail row are written in one transaction (the caller's: the
pipeline's decision, an agent's send); the email goes out once that commits, from the same
process, and the sweep (beat, every minute) sends any row still due: one whose send was
refused (tried again with backoff), or whose sender died before recording it. A sender that
dies after the mail server took the email but before recording it means that email is sent
a second time, with the same Message-ID (mail clients show one message per Message-ID): SMTP
offers no way to ask whether a message was received, so this is the one window left.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.message import make_msgid
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.accounts.models import User
from apps.core.exceptions import InvalidTransitionError, ValidationError
from apps.tickets.models import (
    AuthorKind,
    Channel,
    Message,
    OutboundEmail,
    OutboundEmailStatus,
    Ticket,
    TicketStatus,
)
from apps.tickets.services import Actor, message_add, ticket_handoff

logger = logging.getLogger(__name__)

MAX_REFERENCES = 20
# A sender owns a row this long (its send may take the whole SMTP timeout); after that the
# sweep takes it over.
SEND_CLAIM_SECONDS = 120
RETRY_MAX_SECONDS = 3600


@transaction.atomic
def email_reply_send(
    *,
    ticket: Ticket,
    body: str,
    author_kind: AuthorKind,
    actor: Actor,
    author_user: User | None = None,
) -> Message:
    """Store a reply on the ticket and queue it for the customer by email, threaded under the
    latest email of the conversation (In-Reply-To, References) with a Message-ID of our own,
    which threads the customer's answer back into this ticket. Sent when the caller's
    transaction commits; a mail server that refuses it is tried again (see the module)."""
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
    outbound = OutboundEmail.objects.create(message=message, next_attempt_at=timezone.now())
    transaction.on_commit(lambda: outbound_email_deliver(outbound_id=outbound.pk))
    return message


def _email_of(message: Message) -> EmailMessage:
    """The email for a stored reply, from what was recorded when it was written."""
    recorded = message.metadata["email"]
    headers = {"Message-ID": f"<{recorded['message_id']}>"}
    if recorded.get("in_reply_to"):
        headers["In-Reply-To"] = f"<{recorded['in_reply_to']}>"
        headers["References"] = " ".join(f"<{ref}>" for ref in recorded.get("references", []))
    return EmailMessage(
        subject=recorded["subject"],
        body=message.body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[recorded["to"]],
        reply_to=[settings.SUPPORT_EMAIL],
        headers=headers,
    )


def outbound_email_deliver(*, outbound_id: int) -> bool:
    """Send one outbox row if it is due and no other sender has it; True when the mail server
    took it. Never raises: it runs after a commit and from the sweep, and whatever went wrong
    is recorded on the row (or, the database away, left for the sweep)."""
    try:
        now = timezone.now()
        claimed = OutboundEmail.objects.filter(
            pk=outbound_id, status=OutboundEmailStatus.PENDING, next_attempt_at__lte=now
        ).update(
            next_attempt_at=now + timedelta(seconds=SEND_CLAIM_SECONDS),
            attempts=F("attempts") + 1,
        )
        if claimed != 1:
            return False
        outbound = OutboundEmail.objects.select_related("message").get(pk=outbound_id)
    except Exception:
        logger.exception("outbound email %s not claimed; the sweep tries again", outbound_id)
        return False
    try:
        _email_of(outbound.message).send(fail_silently=False)
    except Exception as error:  # SMTP down, refused, timeout: tried again later
        logger.warning(
            "reply email %s not sent (try %d): %s", outbound_id, outbound.attempts, error
        )
        try:
            _send_failed(outbound, error)
        except Exception:
            logger.exception("the failed send of outbound email %s was not recorded", outbound_id)
        return False
    try:
        OutboundEmail.objects.filter(pk=outbound_id).update(
            status=OutboundEmailStatus.SENT, sent_at=timezone.now(), error=""
        )
    except Exception:  # sent, not recorded: the sweep sends it again, same Message-ID
        logger.exception("outbound email %s sent but not recorded", outbound_id)
    return True


def _send_failed(outbound: OutboundEmail, error: Exception) -> None:
    detail = f"try {outbound.attempts}: {error}"[:2000]
    if outbound.attempts < settings.OUTBOUND_EMAIL_MAX_ATTEMPTS:
        wait = min(RETRY_MAX_SECONDS, 30 * 2 ** (outbound.attempts - 1))
        OutboundEmail.objects.filter(pk=outbound.pk).update(
            next_attempt_at=timezone.now() + timedelta(seconds=wait), error=detail
        )
        return
    with transaction.atomic():
        OutboundEmail.objects.filter(pk=outbound.pk).update(
            status=OutboundEmailStatus.FAILED, error=detail
        )
        ticket = Ticket.objects.select_for_update().get(pk=outbound.message.ticket_id)
        if ticket.status in (TicketStatus.HANDED_OFF, TicketStatus.RESOLVED):
            return
        try:
            ticket_handoff(
                ticket=ticket,
                actor=Actor.system(),
                reason=f"a reply could not be emailed to the customer after "
                f"{outbound.attempts} tries: {error}"[:500],
            )
        except InvalidTransitionError:
            logger.warning("ticket %s not handed off after a failed email", ticket.pk)


def outbound_emails_sweep(*, limit: int = 200) -> int:
    """Send the outbox rows that are due (beat, every minute); returns how many were sent."""
    due = OutboundEmail.objects.filter(
        status=OutboundEmailStatus.PENDING, next_attempt_at__lte=timezone.now()
    ).order_by("next_attempt_at")
    return sum(
        outbound_email_deliver(outbound_id=outbound_id)
        for outbound_id in due.values_list("id", flat=True)[:limit]
    )
