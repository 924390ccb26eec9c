"""Turn a raw RFC 822 email into what a ticket needs: who, threading ids, clean text.

Nothing here touches the database. Email is hostile input: every header read and every part
decode is defensive, HTML is reduced to text with a size cap, attachments are measured and
described but never kept or opened.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import parseaddr
from html.parser import HTMLParser
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email

from apps.core.exceptions import ValidationError

logger = logging.getLogger(__name__)

MAX_ATTACHMENTS_RECORDED = 50
MAX_REFERENCES = 50
MAX_PARTS = 500


class EmailTooLargeError(ValidationError):
    status_code = 413
    code = "too_large"


@dataclass
class ParsedEmail:
    message_id: str
    from_address: str
    from_name: str
    subject: str
    body: str
    in_reply_to: str = ""
    references: list[str] = field(default_factory=list)
    date: str = ""
    attachments: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def thread_ids(self) -> list[str]:
        """Ids this email answers, most specific first: In-Reply-To, then References backwards."""
        ids = [self.in_reply_to] if self.in_reply_to else []
        ids += [ref for ref in reversed(self.references) if ref not in ids]
        return ids

    def metadata(self) -> dict[str, Any]:
        return {
            "email": {
                "message_id": self.message_id,
                "in_reply_to": self.in_reply_to,
                "references": self.references,
                "from": self.from_address,
                "subject": self.subject,
                "date": self.date,
            },
            "intake_notes": self.notes,
        }


def email_parse(raw: bytes, *, oversized_bytes: int | None = None) -> ParsedEmail:
    """Parse a raw email. Raises ValidationError (or EmailTooLargeError) with the reason when
    it cannot become a message: too large, nested too deeply, or no usable sender.

    `oversized_bytes`: `raw` holds only the headers of an email of that size, too large to
    fetch; the message is kept with a note instead of its text.
    """
    try:
        return _email_parse(raw, oversized_bytes=oversized_bytes)
    except RecursionError:
        # The stdlib parser and walk() recurse once per nested multipart.
        raise ValidationError(
            "the email's MIME parts are nested too deeply to read", field="email"
        ) from None


def _email_parse(raw: bytes, *, oversized_bytes: int | None) -> ParsedEmail:
    limit = settings.INBOUND_EMAIL_MAX_BYTES
    if len(raw) > limit:
        raise EmailTooLargeError(
            f"the email is {_megabytes(len(raw))}; the limit is {_megabytes(limit)}",
            field="email",
        )
    if not raw.strip():
        raise ValidationError("the email is empty", field="email")
    message = BytesParser(policy=policy.default).parsebytes(raw)
    headers = _raw_headers(message)
    if not headers:
        raise ValidationError("not an email: it has no headers", field="email")
    from_name, from_address = parseaddr(_header_text(headers.get("from", "")))
    from_address = from_address.strip().lower()
    if not from_address:
        raise ValidationError("the email has no From address", field="email.from")
    try:
        if len(from_address) > 254:  # longer than any deliverable address (RFC 5321)
            raise DjangoValidationError("too long")
        validate_email(from_address)
    except DjangoValidationError:
        raise ValidationError(
            f"the email's From address {from_address[:100]!r} is not valid", field="email.from"
        ) from None
    notes: list[str] = []
    message_id = _first_id(headers.get("message-id", ""))
    if not message_id:
        # A content hash stands in, so the same email posted twice is still one message.
        message_id = f"sha256-{hashlib.sha256(raw).hexdigest()}@deskpilot.invalid"
        notes.append("no Message-ID header: a hash of the email stands in")
    parsed = ParsedEmail(
        message_id=message_id,
        from_address=from_address,
        from_name=from_name.strip()[:200],
        subject=_header_text(headers.get("subject", "")).strip()[:255],
        body="",
        in_reply_to=_first_id(headers.get("in-reply-to", "")),
        references=_all_ids(headers.get("references", ""))[-MAX_REFERENCES:],
        date=_header_text(headers.get("date", "")).strip()[:100],
        notes=notes,
    )
    if oversized_bytes is not None:
        parsed.body = (
            f"(This email was {_megabytes(oversized_bytes)}, over the "
            f"{_megabytes(limit)} limit: its text and attachments were not imported. "
            "It is still in the mailbox.)"
        )
        parsed.notes.append(f"too large ({oversized_bytes} bytes): only the headers were read")
        return parsed
    _body_and_attachments(message, parsed)
    defects = _defects(message)
    if defects:
        parsed.notes.append("MIME defects: " + "; ".join(defects[:5]))
    return parsed


# --- headers -------------------------------------------------------------------------------


def _raw_headers(message: Message) -> dict[str, str]:
    """Header name → raw value, without the policy's parsing (which can raise on junk)."""
    headers: dict[str, str] = {}
    for name, value in message.raw_items():
        # NUL cannot be stored by PostgreSQL (text or JSON): dropped from every header.
        headers.setdefault(name.lower(), str(value).replace("\x00", ""))
    return headers


def _header_text(value: str) -> str:
    """A header value with RFC 2047 encoded words decoded, never raising."""
    from email.header import decode_header, make_header

    try:
        return str(make_header(decode_header(value))).replace("\r", "").replace("\n", " ")
    except Exception:  # malformed encoded words: keep the raw text
        return value.replace("\r", "").replace("\n", " ")


_ID = re.compile(r"<([^<>\s]{1,900})>")


def _first_id(value: str) -> str:
    found = _ID.search(value)
    if found:
        return found.group(1)
    bare = value.strip()
    return bare[:900] if bare and " " not in bare else ""


def _all_ids(value: str) -> list[str]:
    return _ID.findall(value)


def _megabytes(size: int) -> str:
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def _defects(message: Message) -> list[str]:
    found: list[str] = []
    for index, part in enumerate(message.walk()):
        if index > MAX_PARTS:
            break
        found += [type(defect).__name__ for defect in getattr(part, "defects", [])]
    return list(dict.fromkeys(found))


# --- body ----------------------------------------------------------------------------------


def _body_and_attachments(message: Message, parsed: ParsedEmail) -> None:
    body_part = _body_part(message)
    text = ""
    if body_part is not None:
        text = _part_text(body_part, parsed.notes)
        if body_part.get_content_type() == "text/html":
            text = html_to_text(text, notes=parsed.notes)
            parsed.notes.append("HTML body converted to text")
    for index, part in enumerate(message.walk()):
        if index > MAX_PARTS:
            parsed.notes.append(f"more than {MAX_PARTS} MIME parts: the rest were ignored")
            break
        if part is body_part or part.is_multipart():
            continue
        is_text = part.get_content_maintype() == "text"
        disposition = (part.get_content_disposition() or "").lower()
        if is_text and disposition != "attachment" and not part.get_filename():
            continue  # the alternative rendering of the body, not an attachment
        if len(parsed.attachments) >= MAX_ATTACHMENTS_RECORDED:
            parsed.notes.append(f"more than {MAX_ATTACHMENTS_RECORDED} attachments recorded")
            break
        parsed.attachments.append(_attachment_record(part))
    text = strip_quoted_history(text, notes=parsed.notes)
    text = text.replace("\x00", "")
    if not text.strip():
        text = "(The email had no text.)" if not parsed.attachments else "(Attachments only.)"
        parsed.notes.append("no text in the email")
    limit = settings.MESSAGE_MAX_CHARS
    if len(text) > limit:
        parsed.notes.append(f"body truncated from {len(text)} to {limit} characters")
        text = text[:limit]
    parsed.body = text


def _body_part(message: Message) -> Message | None:
    if isinstance(message, EmailMessage):
        try:
            return message.get_body(preferencelist=("plain", "html"))
        except Exception:  # broken structure: fall back to a walk
            logger.debug("get_body failed; walking the parts", exc_info=True)
    for part in message.walk():
        if part.get_content_type() in ("text/plain", "text/html"):
            return part
    return None


def _part_text(part: Message, notes: list[str]) -> str:
    try:
        content = part.get_content()  # type: ignore[attr-defined]
        if isinstance(content, str):
            return content
    except Exception:  # unknown charset, broken transfer encoding
        notes.append("body could not be decoded as declared; decoded leniently")
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:
        return payload.decode("utf-8", errors="replace")


def _attachment_record(part: Message) -> dict[str, Any]:
    try:
        name = part.get_filename() or ""
    except Exception:
        name = ""
    payload = part.get_payload(decode=True)
    size = len(payload) if isinstance(payload, bytes) else 0
    return {
        "name": str(name).replace("\x00", "")[:255],
        "content_type": part.get_content_type()[:100],
        "size": size,
    }


# --- HTML ----------------------------------------------------------------------------------


class _TextExtractor(HTMLParser):
    # Contents never shown as text. blockquote: quoted history in mail clients.
    SKIPPED = frozenset(
        {
            "script",
            "style",
            "head",
            "title",
            "noscript",
            "template",
            "svg",
            "object",
            "iframe",
            "blockquote",
        }
    )
    BLOCKS = frozenset(
        {
            "p",
            "div",
            "br",
            "li",
            "tr",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "pre",
            "table",
            "hr",
            "ul",
            "ol",
            "section",
            "article",
            "header",
            "footer",
        }
    )

    def __init__(self, max_chars: int) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.length = 0
        self.max_chars = max_chars
        self.skipping = 0
        self.is_truncated = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIPPED:
            self.skipping += 1
        elif tag in self.BLOCKS:
            self._add("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.BLOCKS:
            self._add("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIPPED:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.BLOCKS:
            self._add("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self._add(data)

    def _add(self, text: str) -> None:
        if self.length >= self.max_chars:
            self.is_truncated = True
            return
        text = text[: self.max_chars - self.length]
        self.parts.append(text)
        self.length += len(text)


def html_to_text(html: str, *, notes: list[str] | None = None) -> str:
    """Visible text of an HTML body: scripts, styles and quoted blocks dropped, blocks on
    their own lines. Input beyond EMAIL_HTML_MAX_CHARS is cut first (an HTML bomb costs at
    most that much parsing); output is capped a little above MESSAGE_MAX_CHARS."""
    notes = notes if notes is not None else []
    limit = settings.EMAIL_HTML_MAX_CHARS
    if len(html) > limit:
        notes.append(f"HTML body cut from {len(html)} to {limit} characters before parsing")
        html = html[:limit]
    extractor = _TextExtractor(max_chars=settings.MESSAGE_MAX_CHARS * 2)
    # One feed: HTMLParser re-scans its pending buffer on every feed, so chunked feeding of
    # an unterminated tag is quadratic.
    extractor.feed(html)
    extractor.close()
    if extractor.is_truncated:
        notes.append("HTML body text truncated")
    text = "".join(extractor.parts).replace("\xa0", " ")
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# --- quoted history and signatures ---------------------------------------------------------

_WROTE = re.compile(
    r"^(on\b.*\bwrote:|le\b.*\ba écrit\s?:|am\b.*\bschrieb.*:|el\b.*\bescribió:)\s*$", re.I
)
_SEPARATORS = (
    re.compile(r"^-{2,}\s*original message\s*-{2,}\s*$", re.I),
    re.compile(r"^-{2,}\s*forwarded message\s*-{2,}\s*$", re.I),
    re.compile(r"^_{10,}\s*$"),
    re.compile(r"^sent from my \w+", re.I),
)
_OUTLOOK_HEADER = re.compile(r"^(from|de|von):\s", re.I)
_OUTLOOK_NEXT = re.compile(r"^(sent|date|to|subject|envoyé|gesendet):\s", re.I)


def strip_quoted_history(text: str, *, notes: list[str] | None = None) -> str:
    """The new part of a reply: cut at "On … wrote:", Outlook separators or the signature
    delimiter "-- ", and drop ">"-quoted lines. Keeps the text whole if nothing new is left."""
    notes = notes if notes is not None else []
    if not text.strip():
        return ""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    cut = len(lines)
    for index, line in enumerate(lines):
        stripped = line.strip()
        joined = f"{stripped} {lines[index + 1].strip()}" if index + 1 < len(lines) else stripped
        if (
            _WROTE.match(stripped)
            or (stripped.lower().startswith("on ") and _WROTE.match(joined))
            or any(pattern.match(stripped) for pattern in _SEPARATORS)
            or (
                _OUTLOOK_HEADER.match(stripped)
                and index + 1 < len(lines)
                and _OUTLOOK_NEXT.match(lines[index + 1].strip())
            )
        ):
            cut = index
            notes.append("quoted history removed")
            break
        if line in ("-- ", "--"):
            cut = index
            notes.append("signature removed")
            break
    kept = [line for line in lines[:cut] if not line.lstrip().startswith(">")]
    if len(kept) < cut:
        notes.append("quoted lines removed")
    result = "\n".join(kept).strip()
    if not result:
        notes.append("the email held only quoted text: kept whole")
        return text.strip()
    return result
