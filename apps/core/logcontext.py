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

from apps.core.tracing import trace_id_current

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


# Extras that libraries attach to records and a JSON formatter would write whole: Celery's
# `data` (a task's arguments and return value), Django's `request` (its path with the query
# string). The first goes; the second becomes the method and path.
_DROPPED_EXTRAS = ("data",)


class LogContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for name in _DROPPED_EXTRAS:
            record.__dict__.pop(name, None)
        request = record.__dict__.get("request")
        if request is not None and not isinstance(request, str):
            record.request = f"{getattr(request, 'method', '')} {getattr(request, 'path', '')}"
        for key, value in _current().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        if not hasattr(record, "trace_id"):
            trace_id = trace_id_current()
            if trace_id:
                record.trace_id = trace_id
        return True
