"""Every web request's duration into the metrics (apps.core.metrics), by view and status.

The view is the URL pattern's name, never the path (a path carries ids: one series each);
requests that match no pattern count as "unmatched". Buffered: recording adds no Redis round
trip to the request.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase

from apps.core import metrics

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
            method=request.method or "",
            status=str(status),
        )
    )


class RequestMetricsMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self.is_async:
            return self._call_async(request)
        started = time.perf_counter()
        status = 500  # an exception that escapes every handler
        try:
            response = self.get_response(request)
            status = response.status_code
            return response
        finally:
            _record(request, status, started)

    async def _call_async(self, request: HttpRequest) -> HttpResponseBase:
        started = time.perf_counter()
        status = 500
        try:
            response = await self.get_response(request)
            status = response.status_code
            return response
        finally:
            _record(request, status, started)
