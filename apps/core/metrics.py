"""Prometheus metrics that every process adds to and any web process reports whole.

Deskpilot's work happens in several kinds of process at once: uvicorn workers, Celery prefork
children (killed and replaced), and, at scale, other pods. A metric is kept in Redis (one hash
per metric, a field per label set and bucket, HINCRBYFLOAT), so `/metrics` on any web replica
reports the deployment, survives the restart of the process that counted, and needs no shared
directory. prometheus_client's multiprocess mode was the alternative: it sums files that every
writing process keeps in one directory, which holds on one machine but not once workers run in
other pods. prometheus_client still builds the families and writes the text format.

Recording never fails the caller: a Redis error is logged and the observation dropped. Work
on a hot path (web requests) is buffered in the process and flushed about once a second by a
daemon thread; work that must add up exactly (a draft written) is flushed at once.

Every recorded metric is declared here, in one catalogue: name, type, help and label names.
Label values must come from small sets (views, stages, reasons, aliases), never from ids.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import redis
from django.conf import settings
from django.db import transaction
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

logger = logging.getLogger(__name__)

KEY_PREFIX = "deskpilot:metrics:"
# 1 ms to 60 s: a cached reply's few ms to a slow model's minute, for a stage or a request;
# p50/p95/p99 are read with histogram_quantile.
DURATION_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
FLUSH_SECONDS = 1.0


@dataclass(frozen=True)
class MetricSpec:
    name: str  # a counter's name without the _total that the text format adds
    kind: Literal["counter", "histogram"]
    help: str
    labels: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{KEY_PREFIX}{self.name}"


def _counter(name: str, help_text: str, *labels: str) -> MetricSpec:
    return MetricSpec(name, "counter", help_text, labels)


def _histogram(name: str, help_text: str, *labels: str) -> MetricSpec:
    return MetricSpec(name, "histogram", help_text, labels)


HTTP_REQUEST_DURATION = _histogram(
    "deskpilot_http_request_duration_seconds",
    "Web requests by view, method and status; time to the response (its headers, for a stream).",
    "view", "method", "status",
)  # fmt: skip
PIPELINE_STAGE_DURATION = _histogram(
    "deskpilot_pipeline_stage_duration_seconds",
    "Copilot pipeline stages of every draft written; stage=total is the whole composition.",
    "stage",
)
DRAFT_DECISIONS = _counter(
    "deskpilot_draft_decisions",
    "Drafts written, by decision and reason (empty when the draft was auto-sent).",
    "decision", "reason",
)  # fmt: skip
AUTO_SENDS = _counter(
    "deskpilot_auto_sends", "Replies the copilot sent to a customer on its own.", "channel"
)
REPLY_CACHE = _counter(
    "deskpilot_reply_cache_lookups",
    "Drafted replies by where they came from: the reply cache (exact, semantic) or a model.",
    "outcome",
)
GUARD_VERDICTS = _counter(
    "deskpilot_guard_verdicts",
    "The guards' verdicts on drafts written: injection scan, planted passages, output checks.",
    "check", "verdict",
)  # fmt: skip
LLM_CALLS = _counter(
    "deskpilot_llm_calls", "Model calls by alias asked for, model served and outcome.",
    "purpose", "alias", "model", "outcome",
)  # fmt: skip
LLM_TOKENS = _counter(
    "deskpilot_llm_tokens", "Tokens of model calls, by direction.", "alias", "model", "direction"
)
LLM_COST = _counter("deskpilot_llm_cost_usd", "Cost of model calls in USD.", "alias", "model")
LLM_CALL_DURATION = _histogram(
    "deskpilot_llm_call_duration_seconds", "Model calls' latency, fallbacks included.", "alias"
)
LLM_LIMIT_WAIT = _histogram(
    "deskpilot_llm_limit_wait_seconds",
    "Time model calls waited for a turn under their deployment's limits.",
    "deployment",
)
CELERY_TASKS = _counter(
    "deskpilot_celery_tasks", "Celery tasks finished, by queue, task and outcome.",
    "queue", "task", "outcome",
)  # fmt: skip
CELERY_TASK_DURATION = _histogram(
    "deskpilot_celery_task_duration_seconds", "Celery tasks' run time.", "queue", "task"
)

CATALOGUE: tuple[MetricSpec, ...] = (
    HTTP_REQUEST_DURATION,
    PIPELINE_STAGE_DURATION,
    DRAFT_DECISIONS,
    AUTO_SENDS,
    REPLY_CACHE,
    GUARD_VERDICTS,
    LLM_CALLS,
    LLM_TOKENS,
    LLM_COST,
    LLM_CALL_DURATION,
    LLM_LIMIT_WAIT,
    CELERY_TASKS,
    CELERY_TASK_DURATION,
)

_client_lock = threading.Lock()
_clients: dict[tuple[int, str], redis.Redis] = {}


def redis_client() -> redis.Redis:
    """One client per process and Redis URL (redis-py's pool is thread-safe, not fork-safe)."""
    key = (os.getpid(), settings.REDIS_URL)
    with _client_lock:
        if key not in _clients:
            _clients.clear()
            _clients[key] = redis.Redis.from_url(
                settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2
            )
        return _clients[key]


def _field(values: Iterable[str], tail: str | None = None) -> str:
    return json.dumps([*values, tail] if tail is not None else list(values))


@dataclass
class Batch:
    """Observations to add in one Redis round trip: `inc`, `observe`, then `flush`."""

    increments: dict[tuple[str, str], float] = field(default_factory=dict)

    def _values(self, spec: MetricSpec, labels: dict[str, str]) -> list[str]:
        if set(labels) != set(spec.labels):
            raise ValueError(f"{spec.name} takes labels {spec.labels}, not {tuple(labels)}")
        return [str(labels[name]) for name in spec.labels]

    def _add(self, key: str, name: str, amount: float) -> None:
        self.increments[(key, name)] = self.increments.get((key, name), 0.0) + amount

    def inc(self, spec: MetricSpec, amount: float = 1.0, **labels: str) -> Batch:
        if spec.kind != "counter":
            raise ValueError(f"{spec.name} is a {spec.kind}")
        if amount:
            self._add(spec.key, _field(self._values(spec, labels)), float(amount))
        return self

    def observe(self, spec: MetricSpec, seconds: float, **labels: str) -> Batch:
        if spec.kind != "histogram":
            raise ValueError(f"{spec.name} is a {spec.kind}")
        values = self._values(spec, labels)
        seconds = max(0.0, float(seconds))
        # Each bucket counts its own observations; the exposition makes them cumulative.
        bucket = bisect_left(DURATION_BUCKETS, seconds)
        self._add(spec.key, _field(values, str(bucket)), 1.0)
        self._add(spec.key, _field(values, "sum"), seconds)
        return self

    def merge(self, other: Batch) -> None:
        for (key, name), amount in other.increments.items():
            self._add(key, name, amount)

    def flush(self) -> bool:
        """Add everything to Redis; False (logged, dropped) when Redis fails."""
        if not self.increments:
            return True
        increments, self.increments = self.increments, {}
        try:
            pipe = redis_client().pipeline(transaction=False)
            for (key, name), amount in increments.items():
                pipe.hincrbyfloat(key, name, amount)
            pipe.execute()
        except (redis.RedisError, OSError) as error:
            logger.warning("metrics not recorded: %s", error)
            return False
        return True


class _Buffer:
    """A process's buffered observations, flushed by a daemon thread (started per process
    on first use: a forked child starts its own)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.batch = Batch()
        self.pid: int | None = None
        self.wake = threading.Event()

    def add(self, batch: Batch) -> None:
        with self.lock:
            if self.pid != os.getpid():
                self.pid = os.getpid()
                self.batch = Batch()
                threading.Thread(target=self._run, name="metrics-flush", daemon=True).start()
            self.batch.merge(batch)

    def flush(self) -> None:
        with self.lock:
            batch, self.batch = self.batch, Batch()
        batch.flush()

    def _run(self) -> None:
        while True:
            self.wake.wait(FLUSH_SECONDS)
            try:
                self.flush()
            except Exception:  # the thread must outlive any one failure
                logger.exception("metrics flush failed")


_buffer = _Buffer()


def metrics_buffer(batch: Batch) -> None:
    """Add `batch` within about a second, off the caller's path (web requests)."""
    _buffer.add(batch)


def metrics_buffer_flush() -> None:
    """Write this process's buffered observations now (before reading them back)."""
    _buffer.flush()


def metrics_families() -> list[Metric]:
    """Every catalogued metric as prometheus_client families, read from Redis in one round
    trip. Raises redis.RedisError when Redis is down (the caller answers 503)."""
    pipe = redis_client().pipeline(transaction=False)
    for spec in CATALOGUE:
        pipe.hgetall(spec.key)
    stored = pipe.execute()
    families: list[Metric] = []
    for spec, fields in zip(CATALOGUE, stored, strict=True):
        values = {
            tuple(json.loads(name)): float(amount)
            for name, amount in fields.items()
        }  # fmt: skip
        families.append(_family(spec, values))
    return families


def _family(spec: MetricSpec, values: dict[tuple, float]) -> Metric:
    if spec.kind == "counter":
        counter = CounterMetricFamily(spec.name, spec.help, labels=spec.labels)
        for labels, amount in sorted(values.items()):
            counter.add_metric(list(labels), amount)
        return counter
    histogram = HistogramMetricFamily(spec.name, spec.help, labels=spec.labels)
    series: dict[tuple, dict[str, float]] = {}
    for key, amount in values.items():
        series.setdefault(tuple(key[:-1]), {})[key[-1]] = amount
    for labels, parts in sorted(series.items()):
        running, buckets = 0.0, []
        for index, bound in enumerate((*DURATION_BUCKETS, float("inf"))):
            running += parts.get(str(index), 0.0)
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), running))
        histogram.add_metric(list(labels), buckets, parts.get("sum", 0.0))
    return histogram


def metrics_reset() -> None:
    """Forget every recorded value (tests; an operator starting a fresh count)."""
    redis_client().delete(*(spec.key for spec in CATALOGUE))


def metrics_record(batch: Batch) -> None:
    """Add `batch` once the current transaction commits (at once outside one): what a rolled
    back transaction did not write is not counted."""
    transaction.on_commit(batch.flush)
