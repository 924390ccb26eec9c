import socket
import time
from typing import Any

from celery import shared_task
from celery.signals import task_postrun, task_prerun

from apps.core import metrics
from apps.core.services import heartbeat_record

# Start times of the tasks this process runs now, by task id (one at a time in a prefork
# child; a thread pool runs several).
_started: dict[str, float] = {}


@shared_task(name="core.heartbeat_record")
def heartbeat_record_task(name: str = "worker") -> int:
    """Record that a worker ran a task just now (scheduled by beat every 30 s)."""
    return heartbeat_record(name=name, hostname=socket.gethostname()).pk


@task_prerun.connect
def _task_started(task_id: str | None = None, **_: Any) -> None:
    if task_id:
        _started[task_id] = time.perf_counter()


@task_postrun.connect
def _task_finished(
    task_id: str | None = None, task: Any = None, state: str | None = None, **_: Any
) -> None:
    """Every task's outcome (SUCCESS, FAILURE, RETRY, ...) and run time, by queue."""
    started = _started.pop(task_id or "", None)
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
