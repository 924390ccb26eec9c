"""Leases on running work: which runs are alive, across processes and machines.

A worker running a message's pipeline holds a lease on it in Redis: taken with SET NX, so a
second delivery of the same message (the broker's redelivery, the sweep) sees a live run and
leaves it alone instead of drafting it twice; renewed every third of its length by one thread
per process for every lease the process holds; given back when the run ends. A run whose worker
died (SIGKILL, the OOM killer, a lost node) stops being renewed and its lease expires after
RUN_LEASE_SECONDS: the sweep then delivers the message again, instead of waiting for its long
backstop (PIPELINE_SWEEP_PROCESSING_AFTER), which must outlast the slowest live run.

Redis away: leases fail open (the run goes ahead, as before leases; the pipeline's own
compare-and-set keeps it to one draft) and the sweep falls back to the backstop.

Written here rather than with a lock library (python-redis-lock, redis-py's Lock): those
renew each lock from a thread of its own, one thread per running message; one renewer per
process for the 32 runs of a threads worker is what this needs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterable, Iterator

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

KEY_PREFIX = "deskpilot:lease:"


def lease_seconds() -> int:
    return int(settings.RUN_LEASE_SECONDS)


def renew_seconds() -> float:
    return lease_seconds() / 3


# Deletes the key only while it still holds this holder's token (a lease that expired and was
# taken by another run is not given back by the first).
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def _key(kind: str, ident: int | str) -> str:
    return f"{KEY_PREFIX}{kind}:{ident}"


class _Holder:
    """This process's leases and the thread that renews them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.held: dict[str, str] = {}  # key -> token
        self.pid = os.getpid()
        self.client: redis.Redis = redis.Redis.from_url(
            settings.REDIS_URL,
            socket_timeout=settings.REDIS_SOCKET_TIMEOUT,
            socket_connect_timeout=settings.REDIS_SOCKET_TIMEOUT,
        )
        self.wake = threading.Event()
        thread = threading.Thread(target=self._renew_forever, name="lease-renewer", daemon=True)
        thread.start()

    def _renew_forever(self) -> None:
        while True:
            self.wake.wait(renew_seconds())
            self.wake.clear()
            with self.lock:
                held = dict(self.held)
            if not held:
                continue
            try:
                pipe = self.client.pipeline(transaction=False)
                for key, token in held.items():
                    # SET, not EXPIRE: after a Redis restart that lost the key, it comes back.
                    pipe.set(key, token, ex=lease_seconds())
                pipe.execute()
            except redis.RedisError as error:
                logger.warning("leases not renewed (%d held): %s", len(held), error)


_holder: _Holder | None = None
_holder_lock = threading.Lock()


def _this_process() -> _Holder:
    global _holder
    with _holder_lock:
        if _holder is None or _holder.pid != os.getpid():  # none yet, or a forked child
            _holder = _Holder()
        return _holder


@contextlib.contextmanager
def lease(kind: str, ident: int | str) -> Iterator[bool]:
    """Hold the lease on (`kind`, `ident`) for the block; yields False (and holds nothing)
    when a live holder has it already, True otherwise (also when Redis is away)."""
    holder = _this_process()
    key = _key(kind, ident)
    token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    try:
        taken = holder.client.set(key, token, nx=True, ex=lease_seconds())
    except redis.RedisError as error:
        logger.warning("lease %s not taken (Redis unavailable): %s; going ahead", key, error)
        taken = True
    if not taken:
        yield False
        return
    with holder.lock:
        holder.held[key] = token
    try:
        yield True
    finally:
        with holder.lock:
            holder.held.pop(key, None)
        with contextlib.suppress(redis.RedisError):  # it expires on its own
            holder.client.eval(_RELEASE, 1, key, token)


def leases_alive(kind: str, idents: Iterable[int]) -> set[int] | None:
    """Which of `idents` have a live lease; None when Redis cannot say (the caller must then
    assume they all do)."""
    idents = list(idents)
    if not idents:
        return set()
    try:
        values = _this_process().client.mget([_key(kind, ident) for ident in idents])
    except redis.RedisError as error:
        logger.warning("leases not read (Redis unavailable): %s", error)
        return None
    return {ident for ident, value in zip(idents, values, strict=True) if value is not None}
