"""Which Celery worker processes are warm: loaded what a customer message needs, so its
reply comes at full speed. Each pipeline worker process registers itself in Redis once warm
and leaves on shutdown; `/readyz` shows the count, and `up` waits for its workers.

Redis only (no model, no Celery import): the web process and `up` read it too.
"""

from __future__ import annotations

import time

import redis
from django.conf import settings

KEY_PREFIX = "deskpilot:worker-warm:"
# A process killed without a clean shutdown leaves its key: it expires after this.
KEY_TTL_SECONDS = 24 * 3600


def _client(redis_url: str | None = None) -> redis.Redis:
    return redis.Redis.from_url(
        redis_url or settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2
    )


def worker_warm_register(*, hostname: str, pid: int) -> None:
    _client().set(f"{KEY_PREFIX}{hostname}:{pid}", f"{time.time():.0f}", ex=KEY_TTL_SECONDS)


def worker_warm_unregister(*, hostname: str, pid: int) -> None:
    _client().delete(f"{KEY_PREFIX}{hostname}:{pid}")


def workers_warm_count(*, redis_url: str | None = None) -> int:
    """How many worker processes registered as warm (and have not shut down cleanly)."""
    return sum(1 for _ in _client(redis_url).scan_iter(f"{KEY_PREFIX}*", count=1000))


def workers_warm_reset(*, redis_url: str | None = None) -> None:
    """Forget every registration (`up` does it before starting its workers: the keys of a
    previous run's processes would count as warm ones)."""
    client = _client(redis_url)
    for key in client.scan_iter(f"{KEY_PREFIX}*", count=1000):
        client.delete(key)


QUEUES = ("default", "pipeline", "ingest", "eval")
# kombu's Redis transport keeps a queue's priorities 3, 6 and 9 in lists of their own.
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


def celery_queue_lengths(
    *, redis_url: str | None = None, queues: tuple[str, ...] = QUEUES
) -> dict[str, int]:
    """Tasks waiting in each Celery queue (the broker is this Redis), in one round trip."""
    pipe = _client(redis_url).pipeline(transaction=False)
    for queue in queues:
        for suffix in _PRIORITY_SUFFIXES:
            pipe.llen(queue + suffix)
    lengths = pipe.execute()
    width = len(_PRIORITY_SUFFIXES)
    return {
        queue: int(sum(lengths[index * width : (index + 1) * width]))
        for index, queue in enumerate(queues)
    }
