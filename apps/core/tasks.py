import contextlib
import socket
import time
from typing import Any

from celery import shared_task
from celery.signals import task_postrun, task_prerun, worker_init

from apps.core import metrics
from apps.core.logcontext import log_context_reset, log_context_set
from apps.core.services import heartbeat_record
from apps.core.tracing import tracing_setup

# Start times and log contexts of the tasks this process runs now, by task id (one at a
# time in a prefork child; a thread pool runs several).
_started: dict[str, float] = {}
_log_tokens: dict[str, Any] = {}
# Task arguments that name what a task is about: they go on its log lines.
_ID_ARGUMENTS = ("ticket_id", "message_id", "draft_id", "run_id", "delivery_id", "alert_id")


@shared_task(name="core.heartbeat_record")
def heartbeat_record_task(name: str = "worker") -> int:
    """Record that a worker ran a task just now (scheduled by beat every 30 s)."""
    return heartbeat_record(name=name, hostname=socket.gethostname()).pk


@task_prerun.connect
def _task_started(
    task_id: str | None = None, task: Any = None, kwargs: dict | None = None, **_: Any
) -> None:
    if not task_id:
        return
    _started[task_id] = time.perf_counter()
    ids = {name: value for name, value in (kwargs or {}).items() if name in _ID_ARGUMENTS}
    _log_tokens[task_id] = log_context_set(
        {"task_id": task_id, "task": getattr(task, "name", ""), **ids}
    )


@task_postrun.connect
def _task_finished(
    task_id: str | None = None, task: Any = None, state: str | None = None, **_: Any
) -> None:
    """Every task's outcome (SUCCESS, FAILURE, RETRY, ...) and run time, by queue."""
    started = _started.pop(task_id or "", None)
    token = _log_tokens.pop(task_id or "", None)
    if token is not None:
        # ValueError: set in another context (a thread pool's other thread).
        with contextlib.suppress(ValueError):
            log_context_reset(token)
    if task is None:
        return
    delivery = getattr(task.request, "delivery_info", None) or {}
    queue = str(delivery.get("routing_key") or "unknown")
    batch = metrics.Batch().inc(
        metrics.CELERY_TASKS, queue=queue, task=task.name, outcome=(state or "unknown").lower()
    )
    if started is not None:
        batch.observe(
            metrics.CELERY_TASK_DURATION, time.perf_counter() - started, queue=queue, task=task.name
        )
    metrics.metrics_buffer(batch)


@worker_init.connect
def _worker_tracing(**_: Any) -> None:
    """Tracing in the worker's main process (OTEL_EXPORTER_OTLP_ENDPOINT set): its pool
    processes inherit it, and the span exporter's thread restarts in each of them."""
    tracing_setup(process="worker")
