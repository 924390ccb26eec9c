"""Ids on every log line: which request, task, ticket, message and draft a line is about,
and the trace id when tracing is on. Lines carry ids, never a customer's text (see
apps.safety.logs for the filter that masks what slips through anyway).

`log_context_set` binds ids (a context variable: it follows the code into asgiref's threads
and is separate per Celery task and per ASGI request) until `log_context_reset`;
`log_context_add` adds some; `LogContextFilter` copies them onto each record, where the JSON
formatter (LOG_FORMAT=json) writes them as fields.
"""

from __future__ import annotations

import contextvars
import logging

_CONTEXT: contextvars.ContextVar[dict[str, object] | None] = contextvars.ContextVar(
    "deskpilot_log_context", default=None
)


def _current() -> dict[str, object]:
    return _CONTEXT.get() or {}


def log_context_add(**ids: object) -> None:
    """Add ids to the current context (undone by the reset of the set they were added to)."""
    _CONTEXT.set({**_current(), **{k: v for k, v in ids.items() if v is not None}})


def log_context_set(ids: dict[str, object]) -> contextvars.Token:
    """Bind `ids` until `log_context_reset(token)` (for signal pairs: task pre/post run)."""
    return _CONTEXT.set(dict(ids))


def log_context_reset(token: contextvars.Token) -> None:
    _CONTEXT.reset(token)


def _trace_id() -> str | None:
    """The current OpenTelemetry trace id (hex), when tracing is installed and recording."""
    try:
        from opentelemetry import trace
    except ImportError:
        return None
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


class LogContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _current().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        if not hasattr(record, "trace_id"):
            trace_id = _trace_id()
            if trace_id:
                record.trace_id = trace_id
        return True
