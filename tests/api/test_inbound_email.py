import base64

import pytest

from apps.tickets.models import Customer, Message, Ticket, TicketEvent

pytestmark = pytest.mark.django_db

URL = "/api/v1/inbound/email"


def counts() -> tuple[int, int, int]:
    return Customer.objects.count(), Ticket.objects.count(), Message.objects.count()


def email(message_id: str, body: str = "My invoice is wrong.", extra: str = "") -> bytes:
    return (
        "From: Ada <ada@example.com>\r\n"
        "To: support@deskpilot.test\r\n"
        "Subject: Re: Invoice 7\r\n"
        f"Message-ID: <{message_id}>\r\n"
        f"{extra}"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{body}\r\n"
    ).encode()


def post(client, raw: bytes, content_type: str = "message/rfc822", **headers):  # type: ignore[no-untyped-def]
    return client.generic("POST", URL, raw, content_type=content_type, **headers)


def test_raw_email_opens_a_ticket_with_the_customer_message(api_key_client):
    # given
    client = api_key_client()
    # when
    response = post(client, email("m1@x"))
    # then
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["is_duplicate"] is False
    ticket = Ticket.objects.get(pk=body["ticket_id"])
    message = Message.objects.get(pk=body["message_id"])
    assert (ticket.channel, ticket.subject, ticket.status) == ("email", "Invoice 7", "new")
    assert ticket.customer.email == "ada@example.com"
    assert (message.channel, message.channel_message_id) == ("email", "m1@x")
    assert message.body == "My invoice is wrong."
    assert message.pipeline_status == "unscheduled"


def test_text_plain_content_type_is_accepted(api_key_client):
    # when
    response = post(api_key_client(), email("m1@x"), content_type="text/plain")
    # then
    assert response.status_code == 201


def test_reply_is_threaded_into_the_same_ticket_by_in_reply_to(api_key_client):
    # given
    client = api_key_client()
    first = post(client, email("m1@x")).json()
    # when
    reply = post(
        client,
        email(
            "m2@x",
            "Any news?\n\nOn Mon, Ada <ada@example.com> wrote:\n> My invoice",
            "In-Reply-To: <m1@x>\r\n",
        ),
    ).json()
    # then
    assert reply["ticket_id"] == first["ticket_id"]
    assert Message.objects.get(pk=reply["message_id"]).body == "Any news?"
    assert "quoted history removed" in reply["notes"]
    assert Ticket.objects.count() == 1


def test_reply_is_threaded_by_references_when_in_reply_to_is_unknown(api_key_client):
    # given
    client = api_key_client()
    first = post(client, email("m1@x")).json()
    # when
    reply = post(
        client,
        email("m3@x", "Hello?", "In-Reply-To: <lost@x>\r\nReferences: <m1@x> <lost@x>\r\n"),
    ).json()
    # then
    assert reply["ticket_id"] == first["ticket_id"]


def test_reply_headers_from_another_sender_start_a_new_ticket(api_key_client):
    # given: Ada's conversation
    client = api_key_client()
    first = post(client, email("m1@x")).json()
    # when: someone else sends a mail claiming to continue it
    intruder = email(
        "m9@x", "Please send the refund to my account instead.", "In-Reply-To: <m1@x>\r\n"
    )
    intruder = intruder.replace(b"From: Ada <ada@example.com>", b"From: Eve <eve@example.net>")
    reply = post(client, intruder).json()
    # then: Ada's ticket is untouched
    assert reply["ticket_id"] != first["ticket_id"]
    assert Message.objects.filter(ticket_id=first["ticket_id"]).count() == 1


def test_reply_to_a_resolved_ticket_reopens_it(api_key_client):
    # given
    client = api_key_client()
    first = post(client, email("m1@x")).json()
    Ticket.objects.filter(pk=first["ticket_id"]).update(
        status="resolved", resolved_at="2026-01-01T00:00Z"
    )
    # when
    post(client, email("m2@x", "Broken again", "In-Reply-To: <m1@x>\r\n"))
    # then
    ticket = Ticket.objects.get(pk=first["ticket_id"])
    assert ticket.status == "new"
    assert TicketEvent.objects.filter(ticket=ticket, kind="status_changed").get().reason == (
        "the customer wrote again"
    )


def test_duplicate_message_id_stores_one_message(api_key_client):
    # given
    client = api_key_client()
    first = post(client, email("dup@x"))
    # when
    second = post(client, email("dup@x"))
    # then
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["is_duplicate"] is True
    assert second.json()["message_id"] == first.json()["message_id"]
    assert counts() == (1, 1, 1)


@pytest.mark.parametrize(
    ("raw", "status", "message"),
    [
        (b"", 400, "the request body must be a raw email"),
        (b"hello, no headers here", 400, "not an email: it has no headers"),
        (b"Subject: x\r\n\r\nbody", 400, "the email has no From address"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 400, "not an email: it has no headers"),
    ],
)
def test_malformed_email_is_refused_with_the_reason(api_key_client, raw, status, message):
    # when
    response = post(api_key_client(), raw)
    # then
    assert response.status_code == status
    assert response.json()["error"]["message"] == message
    assert counts() == (0, 0, 0)


def test_email_with_a_25_mb_attachment_is_refused_with_413(api_key_client):
    # given
    attachment = base64.encodebytes(b"\0" * (25 * 1024 * 1024))
    raw = (
        b"From: a@example.com\r\nMessage-ID: <big@x>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        b"--B\r\nContent-Type: application/zip\r\n"
        b'Content-Disposition: attachment; filename="a.zip"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + attachment + b"\r\n--B--\r\n"
    )
    # when
    response = post(api_key_client(), raw)
    # then
    assert response.status_code == 413
    assert response.json()["error"]["message"] == (
        f"the email is {len(raw)} bytes; the limit is 10485760 bytes"
    )
    assert counts() == (0, 0, 0)


def test_html_bomb_email_is_stored_as_capped_text(api_key_client, settings):
    # given
    settings.EMAIL_HTML_MAX_CHARS = 100_000
    bomb = "<div>" * 400_000 + "real text"
    # when
    response = post(api_key_client(), email("bomb@x", bomb).replace(b"text/plain", b"text/html"))
    # then
    assert response.status_code == 201
    # (the raw body also carries the line ending the email adds after the HTML)
    assert response.json()["notes"] == [
        "HTML body cut from 2000011 to 100000 characters before parsing",
        "HTML body converted to text",
        "no text in the email",
    ]
    assert Message.objects.get().body == "(The email had no text.)"


def test_json_is_not_an_email(api_key_client):
    # when
    response = api_key_client().post(URL, {"raw": "x"}, format="json")
    # then
    assert response.status_code == 415
    assert counts() == (0, 0, 0)


def test_read_only_key_cannot_post_email(api_key_client):
    # when
    response = post(api_key_client(scopes=("read",)), email("m1@x"))
    # then
    assert response.status_code == 403
    assert counts() == (0, 0, 0)


def test_nul_characters_anywhere_in_an_email_are_dropped_not_a_500(api_key_client):
    # given
    raw = (
        b"From: Ev\x00e <eve@example.com>\r\nSubject: Hi\x00there\r\n"
        b"Message-ID: <nul\x00id@x>\r\nReferences: <a\x00b@x>\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
        b"--B\r\nContent-Type: text/plain\r\n\r\nbody\x00text\r\n"
        b"--B\r\nContent-Type: text/plain\r\n"
        b'Content-Disposition: attachment; filename="a\x00.txt"\r\n'
        b"\r\nx\r\n--B--\r\n"
    )
    # when
    response = post(api_key_client(), raw)
    # then
    assert response.status_code == 201, response.json()
    message = Message.objects.get()
    assert message.body == "bodytext"
    assert message.ticket.subject == "Hithere"
    assert message.channel_message_id == "nulid@x"
    assert message.attachments[0]["name"] == "a.txt"
    assert message.metadata["email"]["references"] == ["ab@x"]
