"""Knowing, anywhere in the code, whether it runs inside a web request.

Some work must never happen there: a model call takes seconds to minutes and belongs on a
Celery worker (the web process would hold a thread, and the customer or agent a spinning
request, for all of it). `WebRequestMarkerMiddleware` marks the request's context;
`in_web_request()` reads the mark (a context variable: asgiref carries it into the threads
that run a request's sync code under ASGI).
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase

_IN_WEB_REQUEST: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "deskpilot_in_web_request", default=False
)


def in_web_request() -> bool:
    return _IN_WEB_REQUEST.get()


class AroundMiddleware:
    """A middleware for sync and async stacks alike that runs `enter` before the rest of the
    stack and `leave` after it (with the response, or None when the stack raised)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def enter(self, request: HttpRequest) -> Any:
        return None

    def leave(self, request: HttpRequest, response: HttpResponseBase | None, state: Any) -> None:
        pass

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self.is_async:
            return self._call_async(request)
        state, response = self.enter(request), None
        try:
            response = self.get_response(request)
            return response
        finally:
            self.leave(request, response, state)

    async def _call_async(self, request: HttpRequest) -> HttpResponseBase:
        state, response = self.enter(request), None
        try:
            response = await self.get_response(request)
            return response
        finally:
            self.leave(request, response, state)


class WebRequestMarkerMiddleware(AroundMiddleware):
    """Marks every request's context as a web request (sync and async alike)."""

    def enter(self, request: HttpRequest) -> contextvars.Token:
        return _IN_WEB_REQUEST.set(True)

    def leave(self, request: HttpRequest, response: HttpResponseBase | None, state: Any) -> None:
        _IN_WEB_REQUEST.reset(state)


def request_thread_release() -> None:
    """Let go of the thread Django keeps for this request's synchronous code, for a response
    that then streams for minutes: call it from the stream's own (async) code, once the view
    and middleware are done.

    Under ASGI, asgiref runs a request's sync parts (middleware, a sync view) in one thread
    of an executor kept for the whole request (`ThreadSensitiveContext`), so every open
    stream would hold an idle thread. No public API releases it early; this shuts that
    executor down and forgets it (reading asgiref's `SyncToAsync` class attributes, checked
    by tests/copilot/test_streaming_server.py). Anything sync the request runs afterwards
    (Django's closing of the response) gets a fresh thread for that moment.
    """
    from asgiref.sync import SyncToAsync

    context_variable = getattr(SyncToAsync, "thread_sensitive_context", None)
    executors = getattr(SyncToAsync, "context_to_thread_executor", None)
    if context_variable is None or executors is None:
        return
    context = context_variable.get(None)
    executor = executors.pop(context, None) if context is not None else None
    if executor is not None:
        executor.shutdown(wait=False)
