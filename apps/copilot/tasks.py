import gc
import logging
import os
import random
import socket
import time

import kombu.exceptions
import redis.exceptions
from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import (
    worker_init,
    worker_process_init,
    worker_process_shutdown,
    worker_shutdown,
)
from django import db
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from threadpoolctl import threadpool_limits

from apps.copilot.links import intent_links_ensure_active, intent_links_learn_active
from apps.copilot.services import draft_regenerate, pipeline_fail, pipeline_run, pipeline_warm
from apps.copilot.services.stream import publish_safely
from apps.core.timelimits import soft_time_limit_watch
from apps.core.workers import worker_warm_register, worker_warm_unregister
from apps.llm.gateway import modules_preload

logger = logging.getLogger(__name__)

# Worth another try: the database, the broker or Redis blinked. Anything else is a bug or a
# bad message, and retrying it would only delay the human who must see it.
TRANSIENT_ERRORS = (
    OperationalError,
    InterfaceError,
    kombu.exceptions.OperationalError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)


@worker_init.connect
def worker_modules_preload(sender: object = None, **_kwargs: object) -> None:
    """In the worker's main process, before it forks its pool: import the heavy libraries
    (litellm, torch, sentence-transformers: ~6 s), so each pool process inherits them
    instead of importing them again. Imports only: no model is loaded and nothing runs, so
    no thread is started that a forked child would lack.

    A threads pool (the `pipeline` queue's worker) runs its tasks in this very process and
    never sends worker_process_init: this process warms up here, before it consumes."""
    natives_single_threaded()
    if not settings.WORKER_WARM:
        return
    started = time.perf_counter()
    modules_preload()
    natives_single_threaded()
    logger.info("worker modules imported in %.1f s", time.perf_counter() - started)
    if "thread" in str(getattr(sender, "pool_cls", "")).lower():
        worker_process_warm()


def natives_single_threaded() -> None:
    """One thread per native call in the libraries loaded so far (OpenBLAS under numpy,
    scipy and spaCy; OpenMP): a worker runs many calls side by side already (processes, or a
    threads pool), and each library's own worker threads only spin and compete for the same
    cores (benchmarks/throughput.py; figures in docs/benchmarks.md)."""
    try:
        threadpool_limits(limits=1)
    except Exception:  # an optimisation only
        logger.warning("native thread pools not limited", exc_info=True)


@worker_process_init.connect
def worker_process_warm(**_kwargs: object) -> None:
    """Loads what the pipeline needs before the process takes its first task, then freezes it.

    Without this, the first customer message each worker process handles waits for
    litellm's import, the embedding model and the classifier (~5-10 s). Everything loaded
    by then lives as long as the process: `gc.freeze()` keeps those ~800k objects out of the
    garbage collector's full collections, each of which otherwise stalls the task running
    at that moment for ~0.5 s (measured in a pipeline worker on this machine).
    """
    if not settings.WORKER_WARM:
        return
    started = time.perf_counter()
    try:
        pipeline_warm()
    except Exception:
        # An optimisation only: the first message pays for the loading instead.
        logger.warning("worker warm-up failed", exc_info=True)
    finally:
        # Celery's Django fixup, which can run after this (it does in a solo worker), closes
        # the file descriptor of any connection still open, meant for ones inherited from a
        # parent; the pool took such a connection back and a worker that found tasks waiting
        # hung on its first query (tests/copilot/test_concurrency_and_worker.py).
        db.connections.close_all()
    natives_single_threaded()  # spaCy and the rest loaded by the warm-up
    gc.freeze()
    try:
        worker_warm_register(hostname=socket.gethostname(), pid=os.getpid())
    except Exception:
        logger.warning("worker warm state not registered", exc_info=True)
    logger.info(
        "worker process ready in %.1f s: %d objects frozen out of garbage collection",
        time.perf_counter() - started,
        gc.get_freeze_count(),
    )


@worker_process_shutdown.connect
@worker_shutdown.connect  # a threads pool's process (a prefork parent never registered)
def worker_process_leave(**_kwargs: object) -> None:
    try:
        worker_warm_unregister(hostname=socket.gethostname(), pid=os.getpid())
    except Exception:  # Redis is gone: the key expires on its own
        logger.warning("worker warm state not unregistered", exc_info=True)


@shared_task(bind=True, name="copilot.pipeline_run", acks_late=True, max_retries=None)
def pipeline_run_task(self, message_id: int) -> int | None:  # type: ignore[no-untyped-def]
    """Run the copilot pipeline for one customer message (scheduled by tickets, by name).

    Idempotent (see services.pipeline_run). Transient errors are retried with exponential
    backoff and jitter up to COPILOT_PIPELINE_MAX_RETRIES; then, as on any other error, the
    failure is recorded on the message and the ticket is handed to a human.
    """
    try:
        with soft_time_limit_watch(settings.PIPELINE_TIME_LIMIT_SECONDS):
            draft = pipeline_run(message_id=message_id)
    except TRANSIENT_ERRORS as error:
        if self.request.retries < settings.COPILOT_PIPELINE_MAX_RETRIES:
            countdown = min(60.0, 2.0**self.request.retries) * (0.5 + random.random())  # noqa: S311
            raise self.retry(exc=error, countdown=countdown) from error
        _fail(message_id, f"gave up after {self.request.retries} retries: {error!r}")
        return None
    except SoftTimeLimitExceeded:
        # The limit may have interrupted a query half-way, leaving the connection unusable:
        # record the failure on a fresh one.
        connection.close()
        _fail(message_id, "the pipeline ran past its time limit")
        return None
    except Exception as error:
        logger.exception("copilot pipeline failed for message %s", message_id)
        _fail(message_id, repr(error))
        return None
    return draft.pk if draft is not None else None


@shared_task(bind=True, name="copilot.draft_regenerate", acks_late=True, max_retries=None)
def draft_regenerate_task(self, message_id: int, actor_id: int | None = None) -> int | None:  # type: ignore[no-untyped-def]
    """A fresh draft for the message at an agent's request (see services.draft_regenerate).

    Transient errors are retried like the pipeline's; any other failure is logged and the
    ticket's draft stream is closed (the previous draft stays as it was: nothing is lost).
    Running it twice makes two drafts, each superseding the one before: harmless.
    """
    try:
        with soft_time_limit_watch(settings.PIPELINE_TIME_LIMIT_SECONDS):
            draft = draft_regenerate(message_id=message_id, actor_id=actor_id)
    except TRANSIENT_ERRORS as error:
        if self.request.retries < settings.COPILOT_PIPELINE_MAX_RETRIES:
            countdown = min(60.0, 2.0**self.request.retries) * (0.5 + random.random())  # noqa: S311
            raise self.retry(exc=error, countdown=countdown) from error
        _regenerate_failed(message_id, error)
        return None
    except Exception as error:
        logger.exception("regenerating the draft of message %s failed", message_id)
        _regenerate_failed(message_id, error)
        return None
    return draft.pk if draft is not None else None


def _regenerate_failed(message_id: int, error: BaseException) -> None:
    from apps.tickets.selectors import message_get

    if isinstance(error, SoftTimeLimitExceeded):
        connection.close()  # the limit may have interrupted a query half-way
    try:
        message = message_get(message_id=message_id)
    except Exception:
        logger.exception("the failed regeneration of message %s was not announced", message_id)
        return
    if message is not None:
        publish_safely(
            message.ticket_id,
            {"type": "final", "draft_id": None, "decision": "", "reason": "",
             "status": "failed", "body": "", "error": f"regenerating failed: {error!r}"[:500]},
        )  # fmt: skip


def _fail(message_id: int, error: str) -> None:
    try:
        pipeline_fail(message_id=message_id, error=error[:2000])
    except Exception:
        # Even recording failed (the database is down): the message stays `processing` and
        # the next delivery or the sweep picks it up again; it is never lost.
        logger.exception("could not record the pipeline failure of message %s", message_id)


@shared_task(name="copilot.intent_links_learn", acks_late=True)
def intent_links_learn_task() -> int | None:
    """Learn the intent→article links for the active classifier and current knowledge base
    ahead of the first message (the pipeline would otherwise do it then). Idempotent."""
    learning = intent_links_learn_active()
    return learning.pk if learning is not None else None


@shared_task(name="copilot.intent_links_refresh")
def intent_links_refresh_task() -> bool:
    """Periodic (beat): learn the links ahead of the next message when the classifier or the
    knowledge base changed (one indexed query otherwise)."""
    return intent_links_ensure_active()


def intent_links_learn_after_import(**_: object) -> None:
    """apps.knowledge's `knowledge_imported`: an import changed the knowledge base, so learn
    the links over it now (on a worker, after the import's transaction commits), not at
    beat's next pass: its pause may have let it learn them over the first articles only,
    and messages until its next pass would be drafted with those."""
    transaction.on_commit(_intent_links_learn_schedule)


def _intent_links_learn_schedule() -> None:
    try:
        intent_links_learn_task.apply_async()
    except Exception as error:  # the broker is down: beat will learn them later
        logger.warning("link learning after an import not scheduled: %s", error)
