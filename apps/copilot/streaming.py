"""Draft tokens as they are generated: Redis pub/sub for live readers plus a short replay
list, so a reader who connects late still sees the draft from its first word.

Events are JSON objects with a per-ticket increasing `seq`:
  {"type": "start", "message_id"}   a draft begins (the replay list is reset)
  {"type": "audience", "customer": true}  the draft is on course to be auto-sent: the
                                    customer may watch it being written
  {"type": "delta", "text"}         the next piece of the reply
  {"type": "reset"}                 the text so far is void; another model starts over
  {"type": "final", "draft_id", "decision", "reason"}  the draft is saved; the stream ends
"""

from __future__ import annotations

import json
import re
import time
import unicodedata
from collections.abc import Iterable, Iterator
from functools import lru_cache

import redis
from django.conf import settings
from django.http import StreamingHttpResponse

REPLAY_MAX_EVENTS = 4000


@lru_cache(maxsize=1)
def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5)


def _keys(ticket_id: int) -> tuple[str, str, str]:
    base = f"deskpilot:draft-stream:{ticket_id}"
    return f"{base}:channel", f"{base}:replay", f"{base}:seq"


# One round trip, atomic: the seq and the replay list's order always agree, even when two
# runs publish for the same ticket at once. The event arrives as JSON without its seq, which
# is spliced in last, as json.dumps({**event, "seq": seq}) would write it (an event is never
# an empty object).
_PUBLISH = """
local seq = redis.call('INCR', KEYS[3])
local payload = string.sub(ARGV[1], 1, -2) .. ', "seq": ' .. seq .. '}'
if ARGV[2] == '1' then redis.call('DEL', KEYS[2]) end
redis.call('RPUSH', KEYS[2], payload)
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[3]), -1)
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('EXPIRE', KEYS[3], ARGV[5])
redis.call('PUBLISH', KEYS[1], payload)
return seq
"""


@lru_cache(maxsize=1)
def _publish_script() -> redis.commands.core.Script:
    return _client().register_script(_PUBLISH)


def stream_publish(*, ticket_id: int, event: dict) -> dict:
    """Append an event to the ticket's replay list and publish it; returns it with its seq."""
    if not event:
        raise ValueError("a stream event needs a type")
    ttl = settings.COPILOT_STREAM_REPLAY_SECONDS
    seq = _publish_script()(
        keys=_keys(ticket_id),
        args=[
            json.dumps({k: v for k, v in event.items() if k != "seq"}),
            "1" if event.get("type") == "start" else "0",
            REPLAY_MAX_EVENTS,
            ttl,
            ttl * 12,
        ],
    )
    return {**event, "seq": int(seq)}


def stream_listeners(*, ticket_id: int) -> int:
    """How many readers are subscribed to the ticket's live events right now."""
    channel, _, _ = _keys(ticket_id)
    ((_, count),) = _client().pubsub_numsub(channel)
    return int(count)


def stream_replay(*, ticket_id: int) -> list[dict]:
    _, replay, _ = _keys(ticket_id)
    return [json.loads(item) for item in _client().lrange(replay, 0, -1)]


def stream_events(
    *, ticket_id: int, timeout: float = 60.0, heartbeat: float = 10.0
) -> Iterator[dict | None]:
    """The ticket's draft events: the replay first, then live ones, until a "final" event
    or `timeout` seconds. Yields None as a heartbeat after `heartbeat` idle seconds.

    Subscribes before reading the replay and drops events already seen (by seq), so no
    event is missed or repeated between the two.
    """
    channel, _, _ = _keys(ticket_id)
    pubsub = _client().pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(channel)
    try:
        last_seq = 0
        for event in stream_replay(ticket_id=ticket_id):
            last_seq = max(last_seq, event["seq"])
            yield event
            if event["type"] == "final":
                return
        deadline = time.monotonic() + timeout
        idle_since = time.monotonic()
        while time.monotonic() < deadline:
            message = pubsub.get_message(timeout=min(1.0, heartbeat))
            if message is None:
                if time.monotonic() - idle_since >= heartbeat:
                    idle_since = time.monotonic()
                    yield None
                continue
            event = json.loads(message["data"])
            if event["seq"] <= last_seq:
                continue
            last_seq = event["seq"]
            idle_since = time.monotonic()
            yield event
            if event["type"] == "final":
                return
    finally:
        pubsub.close()


# What the customer's live view treats as a link: validation checks every link of a reply
# against the knowledge base only once the reply is complete, so the live view never shows
# anything that may be one (a link a model invented, or was told to write by a prompt
# injection, must not reach the customer even for the moment before it is retracted). Wide on
# purpose: stopping the live view early only means the rest arrives with the sent reply.
_SCHEME = re.compile(r"(?i)^\W*(https?|ftp|file|mailto|tel|sms|javascript|vbscript|data):\S")
_MARKERS = re.compile(
    r"(?i)(://|^\W*//\w|www\.|\]\(|<[a-z/!]|href|localhost|[^\W_]@[^\W_]|^\W*/[^\W_]"
    r"|[^\W\d_]:\d)"
)
_DOTTED = re.compile(r"[^\W_]+(?:\.[^\W_]+)+")
# Dotted words that are not names: abbreviations, and numbers (3.99, 2.3.1; not 10.0.0.1).
_ABBREVIATIONS = frozenset({"e.g", "i.e", "a.m", "p.m", "u.s", "u.k", "ph.d", "n.b", "p.s"})
# Letters a look-alike link could hide in: format and control characters, odd spaces; and
# the full-width dots that read as ".".
_INVISIBLE_CATEGORIES = frozenset({"Cf", "Cc", "Zs", "Zl", "Zp"})
_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})


def _is_link_like(word: str) -> bool:
    plain = "".join(
        character
        for character in word
        if unicodedata.category(character) not in _INVISIBLE_CATEGORIES
    ).translate(_DOTS)
    if _SCHEME.search(plain) or _MARKERS.search(plain):
        return True
    for dotted in _DOTTED.findall(plain):
        parts = dotted.split(".")
        is_number = all(part.isdigit() for part in parts) and len(parts) <= 3
        if not is_number and dotted.lower() not in _ABBREVIATIONS:
            return True
    return False


_WORD_ENDS = (" ", "\n", "\t", "\r")


class LiveText:
    """The part of a draft the customer may watch as it is written: the complete words
    before the first link-like one. The word being written is held back (it may become a
    link); from a link-like word on, nothing more is shown until the reply is sent (the
    "message" event carries all of it)."""

    def __init__(self) -> None:
        self.text = ""
        self.shown = 0
        self.stopped = False

    def add(self, piece: str) -> str:
        """Append the next piece; returns what may now be shown ("" when nothing new)."""
        self.text += piece
        if self.stopped:
            return ""
        # Words end at ASCII white space only: a look-alike space inside a link (a hair space
        # after its dot) must not split it into two harmless-looking words.
        words_end = max(self.text.rfind(space) + 1 for space in _WORD_ENDS)
        safe_end = words_end
        for word in re.finditer(r"[^ \n\t\r]+", self.text[self.shown : words_end]):
            if _is_link_like(word.group()):
                safe_end, self.stopped = self.shown + word.start(), True
                break
        visible, self.shown = self.text[self.shown : safe_end], max(self.shown, safe_end)
        return visible


def customer_stream_events(
    *, ticket_id: int, timeout: float = 60.0, heartbeat: float = 10.0
) -> Iterator[dict | None]:
    """What the widget's conversation may show the customer while the copilot drafts.

    "start" names the customer message being answered (the widget shows deltas only for its
    own latest message, never a replay of an earlier answer). A draft on course to be
    auto-sent (an "audience" event before drafting) streams to the customer as it is
    written: "delta" and "reset" pass through, word by word and never a link (`LiveText`).
    Any other draft shows only "typing" (no text). At the end: "message" with the reply if
    it was auto-sent; otherwise "retract" when text was shown (the customer's view drops it:
    it was not sent), then "handed_off" or "needs_review".
    """
    typing_sent = False
    visible = False
    shown = False
    live = LiveText()
    for event in stream_events(ticket_id=ticket_id, timeout=timeout, heartbeat=heartbeat):
        if event is None:
            yield None
            continue
        kind = event["type"]
        if kind == "start":
            # A new run (a retry, the next message): text shown by the previous one goes.
            if shown:
                yield {"type": "retract"}
            visible = shown = False
            live = LiveText()
            yield {"type": "start", "message_id": event.get("message_id")}
        elif kind == "audience":
            visible = bool(event.get("customer"))
        elif kind == "delta":
            piece = live.add(event["text"])
            if visible and piece:
                shown = True
                yield {"type": "delta", "text": piece}
            elif not typing_sent and not shown:
                typing_sent = True
                yield {"type": "typing"}
        elif kind == "reset":
            live = LiveText()
            if shown:
                yield {"type": "reset"}
        elif kind == "final":
            if event.get("decision") == "auto_sent":
                yield {"type": "message", "body": event.get("body", live.text)}
            else:
                if shown:
                    yield {"type": "retract"}
                yield {"type": event.get("decision") or "done"}
            return


def sse_format(event: dict | None) -> str:
    """One Server-Sent Event; a None event is a heartbeat comment."""
    if event is None:
        return ": heartbeat\n\n"
    seq = event.get("seq")
    head = f"id: {seq}\n" if seq is not None else ""
    return f"{head}event: {event['type']}\ndata: {json.dumps(event)}\n\n"


def sse_response(events: Iterable[dict | None]) -> StreamingHttpResponse:
    """A Server-Sent Events response over `events` (a generator: read as the client reads).

    Opens with a comment so clients and proxies see the stream start at once; tells proxies
    not to buffer or cache it.
    """

    def body() -> Iterator[str]:
        yield ": stream open\n\n"
        for event in events:
            yield sse_format(event)

    response = StreamingHttpResponse(body(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response
