"""Publishing Celery tasks from a customer's request without waiting on a broker that hangs.

Intake stores the message first; publishing its task is the next, optional step (the sweep
publishes what was not). A Redis that refuses fails at once, but one that hangs (stopped,
a network partition) holds each publish until its socket timeout, retries included. So once
a publish from a web request fails, this process's web requests skip publishing for
BROKER_BACKOFF_SECONDS: they answer at once and their tasks wait for the sweep, instead of
each paying the timeout. Every process finds out for itself (one failed publish each), which
needs no shared state on the thing that is down. Outside web requests (the sweep itself, a
worker) every publish is tried.

Written here rather than taken from a circuit-breaker library: pybreaker and friends count
failures per call and would still let the requests through until a threshold; the first
failure is the signal here, and the backoff is a timestamp.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from celery import current_app

from apps.core.web import in_web_request

BROKER_BACKOFF_SECONDS = 5.0

_lock = threading.Lock()
_skip_until = 0.0


class BrokerSkipped(Exception):
    """The broker failed moments ago in this process: the task was not published."""


def task_send(name: str, **options: Any) -> None:
    """`send_task(name, **options)`, or, in a web request, BrokerSkipped while the broker is
    in its backoff. Any publish error is re-raised (after starting the backoff, in a web
    request)."""
    web = in_web_request()
    if web and time.monotonic() < _skip_until:
        raise BrokerSkipped(f"the broker failed less than {BROKER_BACKOFF_SECONDS:g} s ago")
    try:
        current_app.send_task(name, **options)
    except Exception:
        if web:
            broker_backoff()
        raise


def broker_backoff(seconds: float = BROKER_BACKOFF_SECONDS) -> None:
    global _skip_until
    with _lock:
        _skip_until = max(_skip_until, time.monotonic() + seconds)


def broker_backoff_reset() -> None:
    global _skip_until
    with _lock:
        _skip_until = 0.0
