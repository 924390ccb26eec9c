"""Publishing a draft's events on the ticket's stream while the pipeline writes it.

Streaming is a preview: Redis trouble is logged, never a lost or failed draft.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings

from apps.copilot import streaming
from apps.copilot.models import Draft, DraftStatus
from apps.llm.services import StreamEvent
from apps.tickets.models import Channel

logger = logging.getLogger(__name__)


class DraftStream:
    """The gateway's stream callback: publishes a draft's events, coalescing deltas.

    A model sends a token or two per chunk and each event is a Redis round trip (~0.3 ms), so
    a reply of 100 chunks cost 30 ms of Deskpilot's own time. The first delta goes at once
    (time to first token); then deltas wait until FLUSH_CHARS of text or FLUSH_SECONDS since
    the last write, which a reader cannot tell from token by token. `flush()` sends the rest:
    call it when the model is done, before the final event.
    """

    FLUSH_CHARS = 48
    FLUSH_SECONDS = 0.04

    def __init__(self, ticket_id: int, channel: str = "") -> None:
        self.ticket_id = ticket_id
        self.channel = channel
        self.pending: list[str] = []
        self.pending_chars = 0
        self.flushed_at: float | None = None
        # What the customer's live view shows of the published text (the widget reads it
        # through the same LiveText): whether they actually saw any is the audit's record.
        self.watched = False
        self.live = streaming.LiveText()
        self.shown = False

    def wanted(self) -> bool:
        """Whether the model's reply is worth streaming: a widget visitor may be watching (the
        widget may connect only after the message is sent), or a reader of the ticket's
        stream is connected now. Otherwise the model answers in one response, which saves
        litellm's parsing of every chunk; a reader who connects mid-draft sees it drafting,
        then the draft."""
        if settings.COPILOT_STREAM_UNWATCHED or self.channel == Channel.WIDGET:
            return True
        try:
            return streaming.stream_listeners(ticket_id=self.ticket_id) > 0
        except Exception:
            logger.warning("draft stream readers of ticket %s unknown", self.ticket_id)
            return True

    def announce(self, event: dict) -> None:
        """Publishes an "audience" event (the customer may watch this draft being written)."""
        publish_safely(self.ticket_id, event)
        self.watched = self.watched or bool(event.get("customer"))

    def __call__(self, event: StreamEvent) -> None:
        if event.type != "delta":
            # A reset voids the text so far; the next model's first token goes at once.
            self.pending, self.pending_chars, self.flushed_at = [], 0, None
            self.live = streaming.LiveText()
            streaming.stream_publish(
                ticket_id=self.ticket_id, event={"type": event.type, "text": event.text}
            )
            return
        self.pending.append(event.text)
        self.pending_chars += len(event.text)
        if (
            self.flushed_at is None
            or self.pending_chars >= self.FLUSH_CHARS
            or time.monotonic() - self.flushed_at >= self.FLUSH_SECONDS
        ):
            self.flush()

    def flush(self) -> None:
        if self.pending:
            text = "".join(self.pending)
            self.pending, self.pending_chars = [], 0
            streaming.stream_publish(
                ticket_id=self.ticket_id, event={"type": "delta", "text": text}
            )
            if self.live.add(text) and self.watched:
                self.shown = True
        self.flushed_at = time.monotonic()


def flush_safely(stream: DraftStream) -> None:
    # Streaming is a preview: Redis trouble must never lose or fail a draft.
    try:
        stream.flush()
    except Exception:
        logger.warning("draft stream of ticket %s not flushed", stream.ticket_id, exc_info=True)


def publish_safely(ticket_id: int, event: dict) -> None:
    # Streaming is a preview: Redis trouble must never lose or fail a draft.
    try:
        streaming.stream_publish(ticket_id=ticket_id, event=event)
    except Exception:
        logger.warning("draft stream event for ticket %s not published", ticket_id, exc_info=True)


def publish_final(draft: Draft) -> None:
    """The stream's closing event; its text only when the draft went to the customer."""
    publish_safely(
        draft.ticket_id,
        {
            "type": "final",
            "draft_id": draft.pk,
            "decision": draft.decision,
            "reason": draft.reason,
            "status": draft.status,
            "body": draft.body if draft.status == DraftStatus.AUTO_SENT else "",
        },
    )
