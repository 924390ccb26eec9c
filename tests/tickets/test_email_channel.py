"""Outbound replies (locmem backend) and the IMAP poll (against a fake IMAP server object)."""

import imaplib

import pytest
from django.core import mail
from django.core.cache import cache
from django.utils import timezone

from apps.core.exceptions import ValidationError
from apps.tickets.email_inbound import _failure_key, email_ingest, imap_poll
from apps.tickets.email_outbound import email_reply_send, outbound_emails_sweep
from apps.tickets.models import Message, OutboundEmail, Ticket
from apps.tickets.services import Actor, customer_resolve, ticket_create

pytestmark = pytest.mark.django_db


def inbound(message_id: str, body: str = "Where is my refund?", extra: str = "") -> bytes:
    return (
        f"From: Ada <ada@example.com>\r\nSubject: Refund\r\nMessage-ID: <{message_id}>\r\n"
        f"{extra}\r\n{body}\r\n"
    ).encode()


def test_reply_is_sent_with_threading_headers_and_stored(
    settings, django_capture_on_commit_callbacks
):
    # given
    settings.SUPPORT_EMAIL = "help@shop.test"
    first = email_ingest(
        raw=inbound("c1@mail.x", extra="References: <older@mail.x>\r\n"), actor=Actor.system()
    ).message
    ticket = first.ticket
    # when
    with django_capture_on_commit_callbacks(execute=True):
        reply = email_reply_send(
            ticket=ticket,
            body="Your refund is on its way.",
            author_kind="agent",
            actor=Actor.system(),
        )
    # then
    assert len(mail.outbox) == 1
    assert OutboundEmail.objects.get(message=reply).status == "sent"
    sent = mail.outbox[0]
    assert sent.to == ["ada@example.com"]
    assert sent.subject == "Re: Refund"
    assert sent.extra_headers["Message-ID"] == f"<{reply.channel_message_id}>"
    assert reply.channel_message_id.endswith("@shop.test")
    assert sent.extra_headers["In-Reply-To"] == "<c1@mail.x>"
    assert sent.extra_headers["References"] == "<older@mail.x> <c1@mail.x>"
    assert sent.message()["Message-ID"] == f"<{reply.channel_message_id}>"
    ticket.refresh_from_db()
    assert ticket.status == "awaiting_customer"


def test_customer_answer_to_our_reply_threads_into_the_ticket():
    # given
    ticket = email_ingest(raw=inbound("c1@mail.x"), actor=Actor.system()).message.ticket
    reply = email_reply_send(
        ticket=ticket, body="Done.", author_kind="copilot", actor=Actor.copilot()
    )
    # when
    answer = email_ingest(
        raw=inbound("c2@mail.x", "Thanks!", f"In-Reply-To: <{reply.channel_message_id}>\r\n"),
        actor=Actor.system(),
    ).message
    # then
    assert answer.ticket_id == ticket.pk
    assert Ticket.objects.get(pk=ticket.pk).status == "new"


def refusing_mail_server(settings) -> None:  # type: ignore[no-untyped-def]
    """Replies go to an SMTP server that refuses connections (nothing listens on port 1)."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = 1


def test_a_refused_send_keeps_the_reply_and_is_sent_once_when_the_server_is_back(
    settings, django_capture_on_commit_callbacks
):
    # given: a mail server that refuses connections
    refusing_mail_server(settings)
    ticket = email_ingest(raw=inbound("c1@mail.x"), actor=Actor.system()).message.ticket
    # when: an agent replies
    with django_capture_on_commit_callbacks(execute=True):
        reply = email_reply_send(
            ticket=ticket, body="It ships today.", author_kind="agent", actor=Actor.system()
        )
    # then: the reply is kept, waiting for its next try with the reason
    outbound = OutboundEmail.objects.get(message=reply)
    assert (outbound.status, outbound.attempts) == ("pending", 1)
    assert "try 1:" in outbound.error and outbound.next_attempt_at > timezone.now()
    assert outbound_emails_sweep() == 0  # not due yet
    # when: the server is back and the next try is due
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    OutboundEmail.objects.filter(pk=outbound.pk).update(next_attempt_at=timezone.now())
    sent = outbound_emails_sweep()
    again = outbound_emails_sweep()
    # then: sent once, with the Message-ID recorded when the reply was written
    assert (sent, again) == (1, 0)
    assert [m.extra_headers["Message-ID"] for m in mail.outbox] == [f"<{reply.channel_message_id}>"]
    outbound.refresh_from_db()
    assert (outbound.status, outbound.error) == ("sent", "")


def test_a_reply_whose_sender_died_before_sending_is_sent_by_the_sweep():
    # given: a reply stored with its outbox row, whose sender died before the commit's send
    # (the callback never ran: no on-commit execution here)
    ticket = email_ingest(raw=inbound("c1@mail.x"), actor=Actor.system()).message.ticket
    reply = email_reply_send(
        ticket=ticket, body="Done.", author_kind="copilot", actor=Actor.copilot()
    )
    assert mail.outbox == []
    # when
    swept = outbound_emails_sweep()
    # then
    assert swept == 1
    assert [m.body for m in mail.outbox] == ["Done."]
    assert OutboundEmail.objects.get(message=reply).status == "sent"


def test_a_reply_refused_on_every_try_goes_to_a_person(
    settings, django_capture_on_commit_callbacks
):
    # given: one try allowed, and a mail server that refuses
    settings.OUTBOUND_EMAIL_MAX_ATTEMPTS = 1
    refusing_mail_server(settings)
    ticket = email_ingest(raw=inbound("c1@mail.x"), actor=Actor.system()).message.ticket
    # when
    with django_capture_on_commit_callbacks(execute=True):
        reply = email_reply_send(
            ticket=ticket, body="x", author_kind="copilot", actor=Actor.copilot()
        )
    # then: failed, and the ticket is with a person who is told why
    assert OutboundEmail.objects.get(message=reply).status == "failed"
    ticket.refresh_from_db()
    assert ticket.status == "handed_off"
    assert "could not be emailed to the customer after 1 tries" in (
        ticket.events.order_by("-id").first().reason
    )


def test_reply_to_a_customer_without_email_is_refused():
    # given
    ticket, _ = ticket_create(
        customer=customer_resolve(external_id="c"), body="hi", channel="api", actor=Actor.system()
    )
    # when / then
    with pytest.raises(ValidationError, match="customer has no email address"):
        email_reply_send(ticket=ticket, body="x", author_kind="agent", actor=Actor.system())
    assert len(mail.outbox) == 0


class FakeImap:
    """Speaks the subset of imaplib.IMAP4 that imap_poll uses, over an in-memory folder."""

    def __init__(
        self,
        mails: dict[str, bytes],
        corrupt: frozenset[str] = frozenset(),
        timeout: frozenset[str] = frozenset(),
    ) -> None:
        self.mails = mails
        self.corrupt = corrupt  # uids the server fails to deliver (IMAP "NO"/"BAD")
        self.timeout = timeout  # uids the server never answers for
        self.fetched: list[str] = []
        self.seen: set[str] = set()
        self.logged_in = False

    def login(self, user: str, password: str) -> tuple[str, list]:
        self.logged_in = (user, password) == ("desk", "secret")
        return "OK", []

    def select(self, folder: str) -> tuple[str, list]:
        return ("OK", [b"1"]) if folder == "INBOX" and self.logged_in else ("NO", [])

    def uid(self, command: str, *args: str) -> tuple[str, list]:
        if command == "SEARCH":
            unseen = [uid for uid in self.mails if uid not in self.seen]
            return "OK", [" ".join(unseen).encode()]
        if command == "FETCH":
            uid, what = args
            self.fetched.append(uid)
            if uid in self.corrupt:
                raise imaplib.IMAP4.error(f"UID FETCH {uid} failed: message is corrupt")
            if uid in self.timeout:
                raise TimeoutError("timed out")
            raw = self.mails[uid]
            if what == "(RFC822.SIZE)":
                return "OK", [f"1 (UID {uid} RFC822.SIZE {len(raw)})".encode()]
            if what == "(BODY.PEEK[HEADER])":
                return "OK", [
                    (b"1 (UID BODY[HEADER]", raw.split(b"\r\n\r\n")[0] + b"\r\n\r\n"),
                    b")",
                ]
            return "OK", [(b"1 (UID BODY[]", raw), b")"]
        if command == "STORE":
            self.seen.add(args[0])
            return "OK", []
        raise AssertionError(command)

    def logout(self) -> tuple[str, list]:
        return "BYE", []


@pytest.fixture
def imap_settings(settings):  # type: ignore[no-untyped-def]
    settings.IMAP_HOST = "imap.test"
    settings.IMAP_USER = "desk"
    settings.IMAP_PASSWORD = "secret"
    settings.IMAP_FOLDER = "INBOX"
    return settings


def test_imap_poll_imports_unseen_mail_once_and_flags_it_seen(imap_settings):
    # given
    server = FakeImap(
        {
            "1": inbound("i1@x"),
            "2": inbound("i2@x", "Follow-up", "In-Reply-To: <i1@x>\r\n"),
            "3": b"garbage without headers",
        }
    )
    # when
    first = imap_poll(connect=lambda: server)
    second = imap_poll(connect=lambda: server)
    # then
    assert (first, second) == (2, 0)
    assert server.seen == {"1", "2", "3"}
    assert Ticket.objects.count() == 1
    assert Message.objects.count() == 2


def test_a_mail_that_keeps_failing_is_skipped_and_never_blocks_the_mail_behind_it(
    imap_settings,
):
    # given: the first unseen mail cannot be fetched, the next one is fine
    cache.delete_many([_failure_key("1"), _failure_key("2")])
    server = FakeImap({"1": inbound("bad@x"), "2": inbound("good@x")}, corrupt=frozenset({"1"}))
    # when: four polls
    stored = [imap_poll(connect=lambda: server) for _ in range(4)]
    # then: the good mail is stored at once; the bad one tried three times, then skipped,
    # and left unread in the mailbox (never flagged seen without being imported)
    assert stored == [1, 0, 0, 0]
    assert Message.objects.get().channel_message_id == "good@x"
    assert server.fetched.count("1") == 3
    assert server.seen == {"2"}


def test_a_mail_the_server_times_out_on_counts_and_is_skipped_after_three_polls(
    imap_settings,
):
    # given: the first unseen mail makes the server time out, every time
    cache.delete_many([_failure_key("1"), _failure_key("2")])
    server = FakeImap({"1": inbound("slow@x"), "2": inbound("fine@x")}, timeout=frozenset({"1"}))

    def poll() -> int | str:
        try:
            return imap_poll(connect=lambda: server)
        except TimeoutError:
            return "stopped"

    # when
    results = [poll() for _ in range(4)]
    # then: three polls stop on it; the fourth skips it and imports the mail behind it
    assert results == ["stopped", "stopped", "stopped", 1]
    assert Message.objects.get().channel_message_id == "fine@x"
    assert "1" not in server.seen


def test_imap_poll_keeps_an_oversized_mail_from_its_headers(imap_settings):
    # given
    imap_settings.INBOUND_EMAIL_MAX_BYTES = 2048
    raw = inbound("huge@x", "x" * 5000)
    server = FakeImap({"7": raw})
    # when
    imap_poll(connect=lambda: server)
    # then
    message = Message.objects.get()
    assert message.body.startswith("(This email was 5.0 KB, over the 2.0 KB limit")
    assert message.metadata["intake_notes"] == [
        f"too large ({len(raw)} bytes): only the headers were read"
    ]


def test_imap_poll_is_off_without_imap_host(settings):
    # given
    settings.IMAP_HOST = ""
    # when / then
    assert imap_poll() == 0


def test_beat_schedules_imap_only_when_configured():
    # given: the test environment has no IMAP_HOST
    from django.conf import settings

    # then
    assert "tickets-imap-poll" not in settings.CELERY_BEAT_SCHEDULE
    assert (
        settings.CELERY_BEAT_SCHEDULE["tickets-pipeline-sweep"]["task"] == "tickets.pipeline_sweep"
    )
