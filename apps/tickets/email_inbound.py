"""Inbound email: store a raw email as a customer message, threaded into its ticket.

Used by the webhook (`POST /api/v1/inbound/email`) and the IMAP poll task.
"""

from __future__ import annotations

import hashlib
import imaplib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, InterfaceError, OperationalError, transaction

from apps.core.exceptions import ValidationError
from apps.tickets.email_parsing import ParsedEmail, email_parse
from apps.tickets.models import AuthorKind, Channel, Message, Ticket
from apps.tickets.services import Actor, customer_resolve, message_add, ticket_create

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmailIngestResult:
    message: Message
    is_created: bool


def email_ingest(
    *,
    raw: bytes,
    actor: Actor,
    oversized_bytes: int | None = None,
    admit: Callable[[str], None] | None = None,
) -> EmailIngestResult:
    """Store one raw email as a customer message; idempotent per Message-ID.

    Threading: the ticket of the message named by In-Reply-To, else by References (newest
    first); otherwise a new ticket. An email whose Message-ID is already stored returns that
    message (is_created False) and creates nothing. Raises ValidationError with the reason for
    an email that cannot become a message. `admit(sender address)`, when given, is called
    before a new email is stored and may raise to refuse it (the API's per-sender limit).
    """
    parsed = email_parse(raw, oversized_bytes=oversized_bytes)
    existing = _stored(parsed.message_id)
    if existing is not None:
        return EmailIngestResult(existing, False)
    if admit is not None:
        admit(parsed.from_address.casefold())
    try:
        with transaction.atomic():
            message = _store(parsed, actor=actor)
    except IntegrityError:
        # The same email arrived twice at once; the other request stored it first.
        existing = _stored(parsed.message_id)
        if existing is None:
            raise
        return EmailIngestResult(existing, False)
    return EmailIngestResult(message, True)


def _stored(message_id: str) -> Message | None:
    return Message.objects.filter(channel=Channel.EMAIL, channel_message_id=message_id).first()


def _thread_ticket(parsed: ParsedEmail) -> Ticket | None:
    ids = parsed.thread_ids
    if not ids:
        return None
    known = dict(
        Message.objects.filter(channel=Channel.EMAIL, channel_message_id__in=ids).values_list(
            "channel_message_id", "ticket_id"
        )
    )
    for thread_id in ids:
        if thread_id in known:
            return Ticket.objects.get(pk=known[thread_id])
    return None


def _store(parsed: ParsedEmail, *, actor: Actor) -> Message:
    customer = customer_resolve(
        email=parsed.from_address,
        name=parsed.from_name,
        channel=Channel.EMAIL,
        identifier=parsed.from_address,
    )
    ticket = _thread_ticket(parsed)
    if ticket is not None and ticket.customer_id != customer.pk:
        # Threading headers are easy to copy: someone else replying into a conversation
        # (a CC, a forward) starts their own ticket instead of writing into the customer's.
        ticket = None
    if actor.kind == "system" and ticket is None:
        actor = Actor.for_customer(customer)
    if ticket is None:
        _, message = ticket_create(
            customer=customer,
            subject=_subject_without_prefixes(parsed.subject),
            channel=Channel.EMAIL,
            actor=actor,
            body=parsed.body,
            attachments=parsed.attachments,
            channel_message_id=parsed.message_id,
            metadata=parsed.metadata(),
        )
        return message
    return message_add(
        ticket=ticket,
        author_kind=AuthorKind.CUSTOMER,
        channel=Channel.EMAIL,
        actor=Actor.for_customer(customer),
        body=parsed.body,
        attachments=parsed.attachments,
        channel_message_id=parsed.message_id,
        metadata=parsed.metadata(),
    )


def _subject_without_prefixes(subject: str) -> str:
    return re.sub(r"^((re|fwd?|aw|tr)\s*:\s*)+", "", subject, flags=re.I).strip()


# --- IMAP ----------------------------------------------------------------------------------

ImapFactory = Callable[[], imaplib.IMAP4]


def _imap_connect() -> imaplib.IMAP4:
    if settings.IMAP_USE_SSL:
        return imaplib.IMAP4_SSL(settings.IMAP_HOST, settings.IMAP_PORT, timeout=30)
    return imaplib.IMAP4(settings.IMAP_HOST, settings.IMAP_PORT, timeout=30)


_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")


# A mail that fails this many polls in a row (a corrupt message the server cannot deliver, a
# bug on our side) is skipped for a week, so it cannot block the mail behind it. It stays
# unread in the mailbox, where a person sees it: it is never flagged seen unimported.
IMAP_MAX_ATTEMPTS = 3
IMAP_SKIP_SECONDS = 7 * 24 * 3600
# The connection is gone: stop this poll (the mail being read counts as a failure).
_POLL_STOPPERS = (imaplib.IMAP4.abort, OSError)


def _failure_count(key: str) -> int:
    cache.add(key, 0, IMAP_SKIP_SECONDS)
    return int(cache.incr(key))


def _failure_key(uid: str) -> str:
    mailbox = f"{settings.IMAP_HOST}|{settings.IMAP_USER}|{settings.IMAP_FOLDER}|{uid}"
    return "imap-failures:" + hashlib.sha256(mailbox.encode()).hexdigest()[:32]


def imap_poll(*, connect: ImapFactory | None = None) -> int:
    """Import unseen mail from IMAP_FOLDER; returns how many new messages were stored.

    Off (returns 0) when IMAP_HOST is unset. A mail is flagged \\Seen only after it is stored
    (or refused with a logged reason), so a crash re-reads it next time and the Message-ID
    makes that harmless. A mail over INBOUND_EMAIL_MAX_BYTES is stored from its headers with
    a note; it stays in the mailbox. A mail that keeps failing is skipped after
    IMAP_MAX_ATTEMPTS polls (logged as an error) and the rest of the mailbox goes on.
    """
    if not settings.IMAP_HOST and connect is None:
        return 0
    client = (connect or _imap_connect)()
    stored = 0
    try:
        client.login(settings.IMAP_USER, settings.IMAP_PASSWORD)
        status, _ = client.select(settings.IMAP_FOLDER)
        if status != "OK":
            raise ValidationError(f"IMAP folder {settings.IMAP_FOLDER!r} cannot be opened")
        _, data = client.uid("SEARCH", None, "UNSEEN")  # type: ignore[arg-type]
        tried = 0
        for uid in (part.decode() for part in (data[0] or b"").split()):
            if tried >= settings.IMAP_BATCH_SIZE:
                break
            key = _failure_key(uid)
            if (cache.get(key) or 0) >= IMAP_MAX_ATTEMPTS:
                continue
            tried += 1
            try:
                stored += _imap_import_one(client, uid)
            except (OperationalError, InterfaceError):
                raise  # the database is down: nothing is wrong with the mail
            except _POLL_STOPPERS:
                # The server dropped or timed out on this mail: it may be the mail's fault
                # (a message it cannot deliver), so it counts, and the poll stops.
                _failure_count(key)
                raise
            except Exception:
                failures = _failure_count(key)
                logger.exception(
                    "IMAP mail uid %s failed (%s of %s attempts)%s",
                    uid,
                    failures,
                    IMAP_MAX_ATTEMPTS,
                    "; skipped from now on, it stays unread in the mailbox for a person"
                    if failures >= IMAP_MAX_ATTEMPTS
                    else "",
                )
    finally:
        try:
            client.logout()
        except Exception:  # the connection may already be gone
            logger.debug("IMAP logout failed", exc_info=True)
    return stored


def _imap_import_one(client: imaplib.IMAP4, uid: str) -> int:
    _, data = client.uid("FETCH", uid, "(RFC822.SIZE)")
    found = _SIZE.search(b" ".join(part if isinstance(part, bytes) else b"" for part in data))
    size = int(found.group(1)) if found else 0
    oversized = size > settings.INBOUND_EMAIL_MAX_BYTES
    section = "BODY.PEEK[HEADER]" if oversized else "BODY.PEEK[]"
    _, data = client.uid("FETCH", uid, f"({section})")
    raw = next((part[1] for part in data if isinstance(part, tuple)), b"")
    created = 0
    try:
        result = email_ingest(
            raw=raw, actor=Actor.system(), oversized_bytes=size if oversized else None
        )
        created = int(result.is_created)
    except ValidationError as error:
        logger.warning("IMAP mail uid %s not imported: %s", uid, error.message)
    client.uid("STORE", uid, "+FLAGS", "(\\Seen)")
    return created
