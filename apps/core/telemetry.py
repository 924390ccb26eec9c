"""Every web request: its duration into the metrics (apps.core.metrics), by view and status,
and a request id on its log lines and in its answer (X-Request-ID).

The view is the URL pattern's name, never the path (a path carries ids: one series each);
requests that match no pattern count as "unmatched". Buffered: recording adds no Redis round
trip to the request. A request id sent by a proxy is kept when it looks like one.
"""

from __future__ import annotations

import re
import time
import uuid

from django.http import HttpRequest, HttpResponseBase

from apps.core import metrics
from apps.core.logcontext import log_context_set
from apps.core.web import AroundMiddleware

# Any client may send any method name: only these become label values (bounded series).
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
# Answered by HealthProbeMiddleware before URL resolution.
_PROBES = {"/healthz": "healthz", "/readyz": "readyz"}


def _view(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    if match is not None:
        return match.view_name or "unnamed"
    return _PROBES.get(request.path, "unmatched")


def _record(request: HttpRequest, status: int, started: float) -> None:
    metrics.metrics_buffer(
        metrics.Batch().observe(
            metrics.HTTP_REQUEST_DURATION,
            time.perf_counter() - started,
            view=_view(request),
            method=request.method if request.method in _METHODS else "other",
            status=str(status),
        )
    )


def _request_id(request: HttpRequest) -> str:
    given = request.headers.get("X-Request-ID", "")
    return given if _REQUEST_ID.match(given) else uuid.uuid4().hex


def _bind(request_id: str) -> None:
    """The request's id on every line logged until the next request of this context: set,
    not scoped, because Django logs a 4xx/5xx answer after the middleware returned. Under
    ASGI each request runs in a context of its own; a sync worker thread's next request
    replaces it."""
    log_context_set({"request_id": request_id})


class RequestTelemetryMiddleware(AroundMiddleware):
    def enter(self, request: HttpRequest) -> tuple[float, str]:
        request_id = _request_id(request)
        _bind(request_id)
        return time.perf_counter(), request_id

    def leave(
        self, request: HttpRequest, response: HttpResponseBase | None, state: tuple[float, str]
    ) -> None:
        started, request_id = state
        if response is not None:
            response["X-Request-ID"] = request_id
        # No response: an exception escaped every handler (a 500).
        _record(request, response.status_code if response is not None else 500, started)
