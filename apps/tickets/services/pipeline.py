"""The pipeline hook: publish, advance and sweep the copilot pipeline task of messages."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import redis
from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from apps.core.broker import task_send
from apps.core.leases import leases_alive
from apps.core.workers import celery_queue_lengths
from apps.tickets.models import (
    Message,
    PipelineStatus,
)

logger = logging.getLogger(__name__)


# The copilot pipeline's task, scheduled by name: tickets sits below copilot in the layering
# and must not import it. The name is the contract (apps/copilot/tasks.py registers it).
PIPELINE_TASK = "copilot.pipeline_run"
PIPELINE_QUEUE = "pipeline"
# The lease a live run holds on its message (apps/core/leases.py; taken by copilot's run).
PIPELINE_LEASE = "pipeline"
# A broker blip is retried briefly; a broker that stays down leaves the message for the sweep.
PIPELINE_PUBLISH_RETRY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}


def message_pipeline_schedule(*, message_id: int) -> bool:
    """Publish the pipeline task for a customer message; True when the broker took it.

    Runs after commit (never inside the transaction that stored the message). Any publish
    failure is logged and recorded on the message, which stays `unscheduled` for the sweep:
    the message itself is already safe. Publishing twice is harmless (the task is idempotent).
    """
    now = timezone.now()
    try:
        task_send(
            PIPELINE_TASK,
            kwargs={"message_id": message_id},
            queue=PIPELINE_QUEUE,
            # Explicit, so the run's limits never depend on whether this process has the
            # task registered (celery would take them from it) or on the worker's defaults.
            soft_time_limit=settings.PIPELINE_TIME_LIMIT_SECONDS,
            time_limit=settings.PIPELINE_HARD_TIME_LIMIT_SECONDS,
            retry=True,
            retry_policy=PIPELINE_PUBLISH_RETRY,
        )
    except Exception as error:  # any broker failure: the sweep retries later
        logger.warning("pipeline task for message %s not published: %s", message_id, error)
        Message.objects.filter(pk=message_id).update(
            pipeline_attempts=F("pipeline_attempts") + 1,
            pipeline_scheduled_at=now,
            pipeline_error=f"publish failed at {now.isoformat()}: {error}"[:2000],
        )
        return False
    Message.objects.filter(pk=message_id).update(
        pipeline_attempts=F("pipeline_attempts") + 1, pipeline_scheduled_at=now
    )
    # The worker may already have moved it past `queued`: only an unscheduled message moves.
    Message.objects.filter(pk=message_id, pipeline_status=PipelineStatus.UNSCHEDULED).update(
        pipeline_status=PipelineStatus.QUEUED, pipeline_error=""
    )
    return True


def message_pipeline_advance(
    *,
    message_id: int,
    from_statuses: Iterable[PipelineStatus],
    to_status: PipelineStatus,
    error: str = "",
) -> bool:
    """Compare-and-set a message's pipeline status; False (and nothing changed) when the
    message is gone or not in one of `from_statuses`. Safe to call twice."""
    now = timezone.now()
    changes: dict[str, Any] = {"pipeline_status": to_status, "pipeline_error": error[:2000]}
    if to_status in (PipelineStatus.AWAITING_TRIAGE, PipelineStatus.PROCESSING):
        changes["pipeline_started_at"] = now
    if to_status in (PipelineStatus.DONE, PipelineStatus.FAILED):
        changes["pipeline_finished_at"] = now
    updated = Message.objects.filter(pk=message_id, pipeline_status__in=list(from_statuses)).update(
        **changes
    )
    return updated == 1


def message_pipeline_sweep(
    *,
    unscheduled_after_seconds: float | None = None,
    queued_after_seconds: float | None = None,
    processing_after_seconds: float | None = None,
    limit: int = 500,
) -> int:
    """Publish again the pipeline task of messages stuck on the way; returns how many were
    published. `unscheduled` ones are retried soon (the broker was down); `queued` ones only
    after a long time (the broker lost the task); `awaiting_triage`/`processing` ones when a
    run started long ago never finished (its worker died and the delivery was lost).
    Idempotent and safe to run concurrently: the task itself is idempotent."""
    unscheduled_after = (
        settings.PIPELINE_SWEEP_UNSCHEDULED_AFTER_SECONDS
        if unscheduled_after_seconds is None
        else unscheduled_after_seconds
    )
    queued_after = (
        settings.PIPELINE_SWEEP_QUEUED_AFTER_SECONDS
        if queued_after_seconds is None
        else queued_after_seconds
    )
    processing_after = (
        settings.PIPELINE_SWEEP_PROCESSING_AFTER_SECONDS
        if processing_after_seconds is None
        else processing_after_seconds
    )
    now = timezone.now()
    unscheduled_cutoff = now - timedelta(seconds=unscheduled_after)
    queued_cutoff = now - timedelta(seconds=queued_after)
    processing_cutoff = now - timedelta(seconds=processing_after)
    # Started long ago and never finished, and not published again recently (that delivery
    # gets its time before the next).
    died = Q(
        pipeline_status__in=[PipelineStatus.AWAITING_TRIAGE, PipelineStatus.PROCESSING],
        pipeline_started_at__lte=processing_cutoff,
    ) & (Q(pipeline_scheduled_at__isnull=True) | Q(pipeline_scheduled_at__lte=processing_cutoff))
    stuck = Message.objects.filter(
        Q(
            pipeline_status=PipelineStatus.UNSCHEDULED,
            created_at__lte=unscheduled_cutoff,
        )
        & (Q(pipeline_scheduled_at__isnull=True) | Q(pipeline_scheduled_at__lte=unscheduled_cutoff))
        | Q(pipeline_status=PipelineStatus.QUEUED, pipeline_scheduled_at__lte=queued_cutoff)
        | died & Q(pipeline_attempts__lt=settings.PIPELINE_MAX_DELIVERIES)
    ).order_by("id")
    # A run that died this many times is killing its worker (or is lost each time): a person
    # answers instead, rather than the sweep publishing it forever.
    for message_id in (
        Message.objects.filter(died, pipeline_attempts__gte=settings.PIPELINE_MAX_DELIVERIES)
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    ):
        _message_pipeline_give_up(message_id)
    due = list(stuck.values_list("id", flat=True)[:limit])
    due += _runs_lost(now, limit=limit - len(due), exclude=due)
    published = 0
    for message_id in due:
        published += message_pipeline_schedule(message_id=message_id)
    return published


def _runs_lost(now: datetime, *, limit: int, exclude: list[int]) -> list[int]:
    """Messages whose delivery was lost before the long backstops above: a run whose worker
    died (its lease, apps/core/leases.py, expired), and a task the broker lost (Redis
    restarted without it) once the pipeline queue is empty. Nothing when Redis cannot say."""
    if limit <= 0:
        return []
    cutoff = now - timedelta(seconds=settings.PIPELINE_SWEEP_ORPHANED_AFTER_SECONDS)
    not_recent = Q(pipeline_scheduled_at__isnull=True) | Q(pipeline_scheduled_at__lte=cutoff)
    started = list(
        Message.objects.filter(
            not_recent,
            pipeline_status__in=[PipelineStatus.AWAITING_TRIAGE, PipelineStatus.PROCESSING],
            pipeline_started_at__lte=cutoff,
            pipeline_attempts__lt=settings.PIPELINE_MAX_DELIVERIES,
        )
        .exclude(pk__in=exclude)
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )
    alive = leases_alive(PIPELINE_LEASE, started)
    lost = (
        [] if alive is None else [message_id for message_id in started if message_id not in alive]
    )
    try:
        queue_empty = celery_queue_lengths(queues=(PIPELINE_QUEUE,))[PIPELINE_QUEUE] == 0
    except redis.RedisError:
        queue_empty = False
    if queue_empty and len(lost) < limit:
        lost += (
            Message.objects.filter(
                not_recent, pipeline_status=PipelineStatus.QUEUED, pipeline_scheduled_at__lte=cutoff
            )
            .exclude(pk__in=exclude)
            .order_by("id")
            .values_list("id", flat=True)[: limit - len(lost)]
        )
    if lost:
        logger.warning("pipeline runs lost (worker or broker died), delivered again: %s", lost)
    return lost


def _message_pipeline_give_up(message_id: int) -> None:
    """Mark the message's pipeline failed and hand its ticket to a person, saying why."""
    # Imported here: services.tickets imports this module (message_pipeline_schedule).
    from django.db import transaction

    from apps.core.exceptions import InvalidTransitionError
    from apps.tickets.selectors import ticket_lock
    from apps.tickets.services.tickets import Actor, ticket_handoff

    reason = (
        f"the copilot pipeline never finished after {settings.PIPELINE_MAX_DELIVERIES} "
        "deliveries (its worker died each time): a person answers instead"
    )
    message = Message.objects.filter(pk=message_id).first()
    if message is None:
        return
    # One transaction, like copilot's pipeline_fail: never failed with nobody on its ticket.
    with transaction.atomic():
        ticket = ticket_lock(ticket_id=message.ticket_id)
        if not message_pipeline_advance(
            message_id=message_id,
            from_statuses=[PipelineStatus.AWAITING_TRIAGE, PipelineStatus.PROCESSING],
            to_status=PipelineStatus.FAILED,
            error=reason,
        ):
            return
        logger.error("message %s: %s", message_id, reason)
        # Already with a person, or resolved: nothing to hand off.
        with contextlib.suppress(InvalidTransitionError):
            ticket_handoff(ticket=ticket, actor=Actor.system(), reason=reason)
