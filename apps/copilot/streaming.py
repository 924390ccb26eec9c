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

import asyncio
import contextlib
import json
import logging
import re
import threading
import unicodedata
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from functools import lru_cache

import redis
import redis.asyncio as redis_async
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, StreamingHttpResponse

from apps.core.db import connections_release
from apps.core.exceptions import ServiceUnavailableError
from apps.core.web import request_thread_release

logger = logging.getLogger(__name__)

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


def stream_forget(*, ticket_ids: list[int]) -> int:
    """Delete the tickets' replay lists and counters (the draft text kept for late
    readers); returns how many keys went."""
    keys = [key for ticket_id in ticket_ids for key in _keys(ticket_id)[1:]]
    return int(_client().delete(*keys)) if keys else 0


def stream_listeners(*, ticket_id: int) -> int:
    """How many readers are subscribed to the ticket's live events right now."""
    channel, _, _ = _keys(ticket_id)
    ((_, count),) = _client().pubsub_numsub(channel)
    return int(count)


def stream_replay(*, ticket_id: int) -> list[dict]:
    _, replay, _ = _keys(ticket_id)
    return [json.loads(item) for item in _client().lrange(replay, 0, -1)]


def stream_seq(*, ticket_id: int) -> int:
    """The seq of the ticket's latest event (0 when none is kept): a page rendered now reads
    the stream `after` it, so only what happens next arrives."""
    _, _, seq = _keys(ticket_id)
    return int(_client().get(seq) or 0)


def stream_resume_point(*, ticket_id: int, message_id: int | None) -> int:
    """Where a page rendered now should read the ticket's stream from: just before the
    draft being written for `message_id` (its whole text so far), else after the latest
    event (only what happens next: a regenerated draft, the next message's)."""
    events = stream_replay(ticket_id=ticket_id)
    if (
        events
        and events[0]["type"] == "start"
        and events[0].get("message_id") == message_id
        and events[-1]["type"] != "final"
    ):
        return int(events[0]["seq"]) - 1
    return stream_seq(ticket_id=ticket_id)


def _async_client() -> redis_async.Redis:
    """This event loop's Redis client (a client's connections belong to one loop)."""
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        # The timeouts bound every command; pub/sub reads wait with their own timeout.
        # Each open stream holds one connection of the pool (its subscription).
        client = redis_async.Redis.from_url(
            settings.REDIS_URL,
            socket_timeout=5,
            socket_connect_timeout=5,
            max_connections=settings.STREAM_MAX_OPEN + 20,
        )
        _async_clients[loop] = client
    return client


_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, redis_async.Redis] = (
    weakref.WeakKeyDictionary()
)


async def stream_events(
    *, ticket_id: int, after: int = 0, timeout: float = 60.0, heartbeat: float = 10.0
) -> AsyncIterator[dict | None]:
    """The ticket's draft events after seq `after`: the replay first, then live ones, until
    a "final" event or `timeout` seconds. Yields None as a heartbeat after `heartbeat` idle
    seconds. An async generator: a reader waits on Redis, holding no thread.

    Subscribes before reading the replay and drops events already seen (by seq), so no
    event is missed or repeated between the two. `after` is what a reconnecting client
    saw last (its Last-Event-ID): nothing up to it is sent again.
    """
    channel, replay, _ = _keys(ticket_id)
    client = _async_client()
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(channel)
    try:
        last_seq = after
        for item in await client.lrange(replay, 0, -1):
            event = json.loads(item)
            if event["seq"] <= last_seq:
                continue
            last_seq = event["seq"]
            yield event
            if event["type"] == "final":
                return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        idle_since = loop.time()
        while loop.time() < deadline:
            try:
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=min(1.0, heartbeat)
                )
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as error:
                # Redis went away mid-stream: the stream ends (a client reconnects with what
                # it saw last); a draft being written is not affected.
                logger.warning("draft stream of ticket %s ended: %s", ticket_id, error)
                return
            if message is None:
                if loop.time() - idle_since >= heartbeat:
                    idle_since = loop.time()
                    yield None
                continue
            event = json.loads(message["data"])
            if event["seq"] <= last_seq:
                continue
            last_seq = event["seq"]
            idle_since = loop.time()
            yield event
            if event["type"] == "final":
                return
    finally:
        # A client that went away cancels the generator mid-wait: the subscription is
        # dropped at once, not when the timeout would have ended it.
        with contextlib.suppress(redis.exceptions.RedisError, OSError):
            await asyncio.shield(pubsub.aclose())


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


async def customer_stream_events(
    *, ticket_id: int, after: int = 0, timeout: float = 60.0, heartbeat: float = 10.0
) -> AsyncIterator[dict | None]:
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
    events = stream_events(ticket_id=ticket_id, after=after, timeout=timeout, heartbeat=heartbeat)
    async for event in events:
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


# Streams open in this process: each holds a Redis connection while it waits.
_open_streams = 0
_open_streams_lock = threading.Lock()


def last_event_id(request: HttpRequest) -> int:
    """The seq a client saw last: the Last-Event-ID header an EventSource sends when it
    reconnects, else an `after` query parameter (a page rendered at that seq); 0 if neither
    is a whole number."""
    raw = request.headers.get("Last-Event-ID") or request.GET.get("after") or "0"
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 19 else 0


def sse_response(request: HttpRequest, events: AsyncIterator[dict | None]) -> StreamingHttpResponse:
    """A Server-Sent Events response over `events`, an async generator.

    Under ASGI (how `up` and the image serve) the response is that generator: each event
    leaves as it is published, and an open stream holds no thread and no database
    connection. Under WSGI (Django's development and live test servers, a WSGI deployment)
    the same generator runs on an event loop of its own in the worker thread, which the
    stream then holds, as any WSGI stream does.

    Opens with a comment so clients and proxies see the stream start at once; tells proxies
    not to buffer or cache it. Call it last in a view: the view's own database connection is
    given back first, since a stream may stay open for minutes. ServiceUnavailableError when
    this process already holds STREAM_MAX_OPEN streams.
    """
    if _open_streams >= settings.STREAM_MAX_OPEN:
        raise ServiceUnavailableError(
            f"this server has {settings.STREAM_MAX_OPEN} streams open, its limit: "
            "retry in a few seconds"
        )
    connections_release()
    body = _sse_body(events)
    is_asgi = isinstance(getattr(request, "_request", request), ASGIRequest)
    response = StreamingHttpResponse(
        body if is_asgi else _on_own_loop(body), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


# How long an agent's stream (inbox, API) stays open, and how often it says it is alive.
AGENT_STREAM_TIMEOUT_SECONDS = 120.0
STREAM_HEARTBEAT_SECONDS = 10.0


def draft_stream_response(request: HttpRequest, ticket_id: int) -> StreamingHttpResponse:
    """The draft of ticket `ticket_id` being written, for an agent (inbox or API): every
    event after the one the client saw last (Last-Event-ID or `?after=`)."""
    return sse_response(
        request,
        stream_events(
            ticket_id=ticket_id,
            after=last_event_id(request),
            timeout=AGENT_STREAM_TIMEOUT_SECONDS,
            heartbeat=STREAM_HEARTBEAT_SECONDS,
        ),
    )


async def _sse_body(events: AsyncIterator[dict | None]) -> AsyncGenerator[str, None]:
    global _open_streams
    request_thread_release()
    with _open_streams_lock:
        _open_streams += 1
    try:
        yield ": stream open\n\n"
        async for event in events:
            yield sse_format(event)
    finally:
        with _open_streams_lock:
            _open_streams -= 1


def _on_own_loop(body: AsyncGenerator[str, None]) -> Iterator[str]:
    loop = asyncio.new_event_loop()
    try:
        while True:
            try:
                yield loop.run_until_complete(anext(body))
            except StopAsyncIteration:
                return
    finally:
        loop.run_until_complete(body.aclose())
        loop.close()
