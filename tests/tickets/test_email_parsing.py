import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.core.exceptions import ValidationError
from apps.tickets.email_parsing import (
    EmailTooLargeError,
    email_parse,
    html_to_text,
    strip_quoted_history,
)


def raw_email(body: str = "Hello", headers: str = "", content_type: str = "text/plain") -> bytes:
    return (
        "From: Ada Lovelace <Ada@Example.com>\r\n"
        "To: support@deskpilot.test\r\n"
        "Subject: Broken invoice\r\n"
        "Message-ID: <abc-1@mail.example.com>\r\n"
        f"{headers}"
        f"Content-Type: {content_type}; charset=utf-8\r\n"
        "\r\n"
        f"{body}\r\n"
    ).encode()


def test_plain_email_gives_sender_subject_ids_and_body():
    # when
    parsed = email_parse(
        raw_email(
            headers="In-Reply-To: <p-2@x>\r\nReferences: <p-1@x> <p-2@x>\r\n",
        )
    )
    # then
    assert (parsed.from_address, parsed.from_name) == ("ada@example.com", "Ada Lovelace")
    assert parsed.subject == "Broken invoice"
    assert parsed.message_id == "abc-1@mail.example.com"
    assert parsed.in_reply_to == "p-2@x"
    assert parsed.references == ["p-1@x", "p-2@x"]
    assert parsed.thread_ids == ["p-2@x", "p-1@x"]
    assert parsed.body == "Hello"


def test_plain_part_is_preferred_over_html():
    # given
    raw = (
        b"From: a@example.com\r\nMessage-ID: <m@x>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/alternative; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/html\r\n\r\n<p>HTML version</p>\r\n"
        b"--B\r\nContent-Type: text/plain\r\n\r\nPlain version\r\n--B--\r\n"
    )
    # when
    parsed = email_parse(raw)
    # then
    assert parsed.body == "Plain version"
    assert parsed.attachments == []


def test_html_only_email_becomes_safe_text():
    # given
    html = (
        "<html><head><title>t</title><style>p{color:red}</style></head><body>"
        "<p>Hello&nbsp;there,</p><script>alert('x')</script><div>My <b>order</b> is late.</div>"
        '<img src="http://tracker/x.png" onerror="steal()">'
        "<blockquote>old quoted text</blockquote></body></html>"
    )
    # when
    parsed = email_parse(raw_email(html, content_type="text/html"))
    # then
    assert parsed.body == "Hello there,\n\nMy order is late."
    assert "HTML body converted to text" in parsed.notes


def test_html_bomb_is_cut_and_parsed_quickly(settings):
    # given: 5 MB of nested tags and an unterminated comment
    settings.EMAIL_HTML_MAX_CHARS = 200_000
    bomb = "<div>" * 1_000_000 + "<!--" + "x" * 100_000
    notes: list[str] = []
    # when
    started = time.monotonic()
    text = html_to_text(bomb, notes=notes)
    elapsed = time.monotonic() - started
    # then
    assert elapsed < 5
    assert text == ""
    assert notes[0] == "HTML body cut from 5100004 to 200000 characters before parsing"


def test_attachments_are_recorded_not_kept():
    # given
    raw = (
        b"From: a@example.com\r\nMessage-ID: <m@x>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain\r\n\r\nSee attached\r\n"
        b'--B\r\nContent-Type: application/x-msdownload; name="run.exe"\r\n'
        b'Content-Disposition: attachment; filename="run.exe"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA\r\n--B--\r\n"
    )
    # when
    parsed = email_parse(raw)
    # then
    assert parsed.body == "See attached"
    assert parsed.attachments == [
        {"name": "run.exe", "content_type": "application/x-msdownload", "size": 12}
    ]


@pytest.mark.parametrize(
    ("text", "expected", "note"),
    [
        (
            "Thanks, it works.\n\nOn Mon, 1 Jan 2026 at 10:00, Support <s@x> wrote:\n> Try again",
            "Thanks, it works.",
            "quoted history removed",
        ),
        (
            "Yes please.\n\nOn Mon, 1 Jan 2026 at 10:00, Support Team\n<s@x> wrote:\n> hi",
            "Yes please.",
            "quoted history removed",
        ),
        (
            "Fine.\n\n-----Original Message-----\nFrom: Support\nSent: today\n\nold",
            "Fine.",
            "quoted history removed",
        ),
        (
            "Fine.\n\n________________________________\nFrom: Support <s@x>\nSent: Monday\nold",
            "Fine.",
            "quoted history removed",
        ),
        (
            "Fine.\nFrom: Support <s@x>\nSent: Monday\nTo: me\n\nold",
            "Fine.",
            "quoted history removed",
        ),
        ("Cheers\n-- \nAda Lovelace\nCEO", "Cheers", "signature removed"),
        (
            "> question one\nanswer one\n> question two\nanswer two",
            "answer one\nanswer two",
            "quoted lines removed",
        ),
        ("> only quoted", "> only quoted", "the email held only quoted text: kept whole"),
    ],
)
def test_quoted_history_and_signatures_are_stripped(text, expected, note):
    # given
    notes: list[str] = []
    # when
    result = strip_quoted_history(text, notes=notes)
    # then
    assert result == expected
    assert note in notes


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "the email is empty"),
        (b"just some text without any headers", "not an email: it has no headers"),
        (b"\x00\x01\x02\xff\xfe binary", "not an email: it has no headers"),
        (b"Subject: hi\r\n\r\nno sender", "the email has no From address"),
        (b"From: not an address\r\n\r\nbody", "the email's From address 'not' is not valid"),
        (
            b"From: " + b"a" * 300 + b"@example.com\r\n\r\nbody",
            f"the email's From address {'a' * 100!r} is not valid",
        ),
    ],
)
def test_email_without_a_usable_sender_is_refused_with_the_reason(raw, message):
    # when / then
    with pytest.raises(ValidationError) as raised:
        email_parse(raw)
    assert raised.value.message == message


def test_email_over_the_size_cap_is_refused_as_too_large(settings):
    # given
    settings.INBOUND_EMAIL_MAX_BYTES = 2048
    # when / then
    with pytest.raises(EmailTooLargeError) as raised:
        email_parse(raw_email("x" * 3000))
    assert raised.value.status_code == 413
    assert raised.value.message == "the email is 3.1 KB; the limit is 2.0 KB"


def test_broken_mime_is_stored_with_a_note():
    # given: a multipart without its closing boundary and a bad base64 part
    raw = (
        b"From: a@example.com\r\nMessage-ID: <m@x>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain; charset=no-such-charset\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n!!!not base64\r\n"
    )
    # when
    parsed = email_parse(raw)
    # then
    assert parsed.body
    assert any(note.startswith("MIME defects: ") for note in parsed.notes)


def test_missing_message_id_gets_a_stable_content_hash():
    # given
    raw = b"From: a@example.com\r\nSubject: x\r\n\r\nhello\r\n"
    # when
    first, second = email_parse(raw), email_parse(raw)
    # then
    assert first.message_id == second.message_id
    assert first.message_id.startswith("sha256-")
    assert "no Message-ID header: a hash of the email stands in" in first.notes


def test_long_body_is_truncated_with_a_note(settings):
    # given
    settings.MESSAGE_MAX_CHARS = 100
    # when
    parsed = email_parse(raw_email("z" * 150))
    # then
    assert parsed.body == "z" * 100
    assert "body truncated from 150 to 100 characters" in parsed.notes


def test_encoded_headers_are_decoded():
    # given
    raw = (
        b"From: =?utf-8?q?Jos=C3=A9_P=C3=A9rez?= <jose@example.com>\r\n"
        b"Subject: =?utf-8?b?w4lsw6lwaGFudA==?=\r\nMessage-ID: <e@x>\r\n\r\nhola\r\n"
    )
    # when
    parsed = email_parse(raw)
    # then
    assert parsed.from_name == "José Pérez"
    assert parsed.subject == "Éléphant"


def test_deeply_nested_mime_is_refused_with_the_reason():
    # given: 3000 multiparts, each inside the previous one
    depth = 3000
    raw = b"From: a@example.com\r\nMessage-ID: <n@x>\r\nMIME-Version: 1.0\r\n"
    for level in range(depth):
        raw += f'Content-Type: multipart/mixed; boundary="b{level}"\r\n\r\n--b{level}\r\n'.encode()
    raw += b"Content-Type: text/plain\r\n\r\nhi\r\n"
    for level in reversed(range(depth)):
        raw += f"--b{level}--\r\n".encode()
    # when / then
    with pytest.raises(ValidationError) as raised:
        email_parse(raw)
    assert raised.value.message == "the email's MIME parts are nested too deeply to read"


SAMPLE = (
    b"From: Ada <ada@example.com>\r\nSubject: =?utf-8?q?Hi?=\r\nMessage-ID: <s@x>\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=B\r\n\r\n"
    b"--B\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b"PHA+SGk8L3A+\r\n--B\r\nContent-Type: text/plain\r\n\r\nHi\r\n--B--\r\n"
)


@settings(max_examples=300, deadline=None)
@given(
    data=st.one_of(
        st.binary(max_size=2000),
        st.tuples(st.integers(0, len(SAMPLE)), st.binary(max_size=50), st.integers(0, 40)).map(
            lambda cut: SAMPLE[: cut[0]] + cut[1] + SAMPLE[cut[0] + cut[2] :]
        ),
    )
)
def test_any_bytes_parse_or_are_refused_with_a_reason(data):
    # when / then: either a message with text, or a ValidationError; nothing else escapes
    try:
        parsed = email_parse(data)
    except ValidationError as error:
        assert error.message
    else:
        assert parsed.body.strip()
        assert "\x00" not in parsed.body + parsed.subject + parsed.message_id + parsed.from_name
