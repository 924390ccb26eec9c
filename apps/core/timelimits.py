"""A Celery task's soft time limit that libraries cannot hide.

Celery's prefork pool signals a task that passed its soft time limit once (SIGUSR1 in the
child), and the signal handler raises SoftTimeLimitExceeded wherever the task is. Inside a
library that catches every exception (litellm's Router retries and falls back on anything),
the exception is swallowed and the run goes on as if nothing happened, until the hard limit
kills the process. `soft_time_limit_watch()` also notes the signal, so code after such a
library (`soft_time_limit_check()`) stops the run anyway.

A threads pool (the `pipeline` queue's worker) has no time limits at all: no signal reaches
a thread. There `soft_time_limit_watch(seconds)` sets a deadline for the calling thread and
`soft_time_limit_check()` raises once it has passed. That stops a run at its next check (after
each model call, each stage), not in the middle of one: every wait in it has its own timeout
(model calls, the database's statement_timeout, Redis sockets).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from celery.exceptions import SoftTimeLimitExceeded

_reached = threading.Event()
_thread = threading.local()  # .deadline: time.monotonic() after which a thread's run stops


@contextmanager
def soft_time_limit_watch(seconds: float | None = None) -> Iterator[None]:
    """While inside, a soft time limit signal is also noted (see the module docstring).

    In a process's main thread, where signals are delivered. In any other thread (a threads
    pool), `seconds` from now is the limit, checked by `soft_time_limit_check()`.
    """
    if threading.current_thread() is not threading.main_thread():
        _thread.deadline = time.monotonic() + seconds if seconds else None
        try:
            yield
        finally:
            _thread.deadline = None
        return
    previous = signal.getsignal(signal.SIGUSR1)

    def note(signum: int, frame: FrameType | None) -> None:
        _reached.set()
        if callable(previous):
            previous(signum, frame)

    _reached.clear()
    signal.signal(signal.SIGUSR1, note)
    try:
        yield
    finally:
        signal.signal(signal.SIGUSR1, previous)
        _reached.clear()


def soft_time_limit_check() -> None:
    """Raise SoftTimeLimitExceeded if the watched task passed its soft time limit."""
    if _reached.is_set():
        raise SoftTimeLimitExceeded("the soft time limit passed during a call that hid it")
    deadline = getattr(_thread, "deadline", None)
    if deadline is not None and time.monotonic() > deadline:
        raise SoftTimeLimitExceeded("the run passed its time limit")
