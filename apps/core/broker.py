"""Publishing Celery tasks from a customer's request without waiting on a broker that hangs.

Intake stores the message first; publishing its task is the next, optional step (the sweep
publishes what was not). A Redis that refuses fails at once, but one that hangs (stopped,
a network partition) holds each publish until its socket timeout, retries included. So once
a publish from a web request fails, this process's web requests skip publishing for
BROKER_BACKOFF_SECONDS: they answer at once and their tasks wait for the sweep, instead of
each paying the timeout. Every process finds out for itself (one failed publish each), which
needs no shared state on the thing that is down. Outside web requests (the sweep itself, a
worker) every publish is tried.
"""

from __future__ import annotations

from typing import Any

from celery import current_app

from apps.core.backoff import Backoff
from apps.core.web import in_web_request

BROKER_BACKOFF_SECONDS = 5.0
broker_backoff = Backoff(BROKER_BACKOFF_SECONDS)


class BrokerSkipped(Exception):
    """The broker failed moments ago in this process: the task was not published."""


def task_send(name: str, **options: Any) -> None:
    """`send_task(name, **options)`, or, in a web request, BrokerSkipped while the broker is
    in its backoff. Any publish error is re-raised (after starting the backoff, in a web
    request)."""
    web = in_web_request()
    if web and broker_backoff.holding():
        raise BrokerSkipped(f"the broker failed less than {BROKER_BACKOFF_SECONDS:g} s ago")
    try:
        current_app.send_task(name, **options)
    except Exception:
        if web:
            broker_backoff.start()
        raise
