"""The short chaos run, in the suite (benchmarks/chaos.py runs the long one against `up`):
tickets posted while the pipeline's threads worker is SIGKILLed three times with model calls
in flight. Nothing lost, no reply sent twice, every message decided or handed off with a
reason, the killed runs delivered again by the sweep once their leases expired."""

from __future__ import annotations

import json
import uuid

import psutil
import pytest

from apps.copilot.integrity import pipeline_integrity
from apps.tickets.models import AuthorKind, Message, PipelineStatus
from apps.tickets.services import message_pipeline_sweep
from tests.conftest import celery_worker, wait_for
from tests.llm.fake_openai import Reply

TICKETS = 36
THREADS = 6
QUESTIONS = (
    "I forgot my password and the reset email never arrives",
    "how do I reset my password?",
    "where can I see my invoices",
    "please cancel my order",
)


def worker_process(node: str) -> psutil.Process:
    """The `celery worker` child process named `node` (tests.conftest.celery_worker)."""
    for child in psutil.Process().children():
        try:
            if node in " ".join(child.cmdline()):
                return child
        except psutil.Error:  # an earlier test's process, exited since it was listed
            continue
    raise LookupError(f"no worker process named {node}")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_tickets_survive_their_threads_worker_killed_three_times(
    copilot_ready, fake_openai, api_key_client, monkeypatch, settings
):
    # given: a model that takes a second a call, a pipeline queue of this test's own, leases
    # of 3 s, and the sweep (run here, as beat would) delivering runs again 6 s after they
    # started once their lease is gone
    queue = f"chaos-{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr("apps.tickets.services.pipeline.PIPELINE_QUEUE", queue)
    settings.PIPELINE_SWEEP_ORPHANED_AFTER_SECONDS = 6
    answer = json.dumps(
        {"reply": "You can set a new password yourself.", "citations": ["P1"], "answerable": True}
    )
    fake_openai.reset(Reply.ok(answer, delay=1.0))
    worker_env = {
        "WORKER_WARM": "false",
        "RUN_LEASE_SECONDS": "3",
        "PIPELINE_SWEEP_ORPHANED_AFTER": "6",
        "COPILOT_AUTO_SEND_THRESHOLD": "0.5",
        "COPILOT_REVIEW_THRESHOLD": "0.1",
        "FAKE_OPENAI_KEY": "sk-fake",
    }
    for alias in ("DRAFT_FAST", "DRAFT_STRONG"):
        worker_env[f"LLM_{alias}_MODEL"] = "openai/gpt-4o-mini"
        worker_env[f"LLM_{alias}_API_BASE"] = fake_openai.base_url
        worker_env[f"LLM_{alias}_API_KEY_ENV"] = "FAKE_OPENAI_KEY"
    client = api_key_client()
    ticket_ids = []
    for index in range(TICKETS):
        response = client.post(
            "/api/v1/tickets", {"body": QUESTIONS[index % len(QUESTIONS)]}, format="json"
        )
        assert response.status_code == 201, response.json()
        ticket_ids.append(response.json()["id"])

    # when: the worker is killed three times, started again each time: twice as soon as it
    # has runs under way (still loading its models), once with model calls in flight
    def processing() -> int:
        return Message.objects.filter(
            ticket_id__in=ticket_ids, pipeline_status=PipelineStatus.PROCESSING
        ).count()

    for moment in ("runs started", "runs started", "model calls in flight"):
        with celery_worker(queues=queue, pool="threads", concurrency=THREADS, **worker_env) as node:
            if moment == "runs started":
                wait_for(lambda: processing() >= 2, timeout=60, interval=0.05)
            else:
                wait_for(lambda: fake_openai.in_flight >= 2, timeout=90, interval=0.05)
            worker_process(node).kill()
    # and: a last worker, with the sweep running every second, until everything is decided
    with celery_worker(queues=queue, pool="threads", concurrency=THREADS, **worker_env):

        def settled() -> bool:
            message_pipeline_sweep()
            return pipeline_integrity(ticket_ids=ticket_ids).undecided == []

        wait_for(settled, timeout=180, interval=1.0)
    # then: every message stored and decided once, no customer answered twice, every handoff
    # with its reason
    report = pipeline_integrity(ticket_ids=ticket_ids)
    assert report.customer_messages == TICKETS
    assert report.sound, report.lines()
    assert sum(report.decisions.values()) == TICKETS
    assert report.decisions["auto_sent"] > 0  # replies were sent: "not twice" means something
    for ticket_id in ticket_ids:
        replies = Message.objects.filter(ticket_id=ticket_id, author_kind=AuthorKind.COPILOT)
        assert replies.count() <= 1
    # and: the kills interrupted runs, which were delivered again
    redelivered = Message.objects.filter(
        ticket_id__in=ticket_ids, author_kind=AuthorKind.CUSTOMER, pipeline_attempts__gt=1
    )
    assert redelivered.exists()
