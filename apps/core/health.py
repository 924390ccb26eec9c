"""Liveness (`/healthz`) and readiness (`/readyz`) probes.

readyz answers 200 when this web process can take in customer messages: the database and
its pgvector extension answer. Intake is durable-first (a message is stored before anything
else, and the sweep schedules what Redis or the workers could not take), so a Redis outage
or no Celery worker is reported (`status: degraded`, `down` names them) without taking the
web out of its load balancer: that would turn a slow queue into refused customers. It also
says how many worker processes are warm (loaded what a customer message needs).

The checks run side by side and the probe answers within READY_DEADLINE_SECONDS whatever
hangs (a Redis stopped, not refused, holds a socket until its timeout): a check still running
then is reported down as "no answer".
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from apps.core.workers import workers_warm_count

CHECK_TIMEOUT_SECONDS = 2.0
logger = logging.getLogger(__name__)


def check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def check_pgvector() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        row = cursor.fetchone()
    if row is None:
        raise RuntimeError("the vector extension is not installed (run migrations)")
    return f"ok (pgvector {row[0]})"


def check_redis() -> str:
    client = redis.Redis.from_url(
        settings.REDIS_URL,
        socket_timeout=CHECK_TIMEOUT_SECONDS,
        socket_connect_timeout=CHECK_TIMEOUT_SECONDS,
    )
    try:
        client.ping()
    finally:
        client.close()
    return "ok"


def check_celery_worker() -> str:
    from config.celery import app

    # limit=1: return on the first answer instead of waiting out the timeout for more.
    replies = app.control.ping(timeout=1.0, limit=1)
    if not replies:
        raise RuntimeError("no Celery worker answered a ping within 1 s")
    return f"ok ({next(iter(replies[0]))} answered)"


CHECKS: dict[str, Callable[[], str]] = {
    "database": check_database,
    "pgvector": check_pgvector,
    "redis": check_redis,
    "celery_worker": check_celery_worker,
}


# Without these the web cannot take a message in; the others degrade it (see the docstring).
REQUIRED = frozenset({"database", "pgvector"})
READY_DEADLINE_SECONDS = 2.5
# Threads for the checks of Redis and the workers; one that hangs past the deadline ends on
# its own socket timeout.
_checks_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="readyz")


def _timed(check: Callable[[], str]) -> dict[str, object]:
    started = time.perf_counter()
    try:
        detail, ok = check(), True
    except Exception as error:  # a probe reports every failure, whatever its kind
        detail, ok = f"{type(error).__name__}: {error}", False
    return {"ok": ok, "detail": detail, "ms": round((time.perf_counter() - started) * 1000, 1)}


def run_checks() -> tuple[bool, dict[str, dict[str, object]]]:
    """(ready, each component's state): ready when every REQUIRED component answered.

    The database checks run in the caller's thread, on its connection (bounded by the web's
    statement_timeout); the others in pool threads, waited for until the deadline."""
    started = time.monotonic()
    futures = {
        name: _checks_pool.submit(_timed, check)
        for name, check in CHECKS.items()
        if name not in REQUIRED
    }
    components = {name: _timed(CHECKS[name]) for name in CHECKS if name in REQUIRED}
    wait(futures.values(), timeout=max(0.0, READY_DEADLINE_SECONDS - (time.monotonic() - started)))
    for name, future in futures.items():
        if future.done():
            components[name] = future.result()
        else:
            components[name] = {
                "ok": False,
                "detail": f"no answer within {READY_DEADLINE_SECONDS:g} s",
                "ms": READY_DEADLINE_SECONDS * 1000,
            }
        if not components[name]["ok"]:
            logger.warning("readiness check %s failed: %s", name, components[name]["detail"])
    ready = all(components[name]["ok"] for name in REQUIRED)
    return ready, components


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    ready, components = run_checks()
    down = [name for name, state in components.items() if not state["ok"]]
    if not settings.HEALTH_DETAILS:
        # The probe is public: error texts (hosts, roles) stay in the log.
        for state in components.values():
            state["detail"] = "ok" if state["ok"] else "down (details in the log)"
    body = {
        "status": ("degraded" if down else "ready") if ready else "unavailable",
        "down": down,
        "components": components,
        # Informational: a worker that is up but still loading answers its first messages
        # slowly; `up` waits for these before it says ready.
        # Not asked of a Redis that did not answer the check: it would wait out its timeout.
        "warm_worker_processes": _warm_workers() if components["redis"]["ok"] else None,
    }
    return JsonResponse(body, status=200 if ready else 503)


def _warm_workers() -> int | None:
    try:
        return workers_warm_count()
    except Exception:  # Redis is down: the redis component says so
        return None


class HealthProbeMiddleware:
    """Answers /healthz and /readyz before any other middleware.

    Orchestrators probe by pod IP or 127.0.0.1, which ALLOWED_HOSTS rightly refuses for
    everything else, and over plain HTTP inside the cluster: probes skip host validation and
    the HTTPS redirect, and nothing else does.
    """

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest):  # type: ignore[no-untyped-def]
        if request.path == "/healthz":
            return healthz(request)
        if request.path == "/readyz":
            return readyz(request)
        return self.get_response(request)
