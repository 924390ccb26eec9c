"""What happens while the model writes (another thread changes the ticket), and the whole
path through a real Celery worker."""

from __future__ import annotations

import json
import threading
import time

import pytest
from django.db import connection

from apps.accounts.models import Role, User
from apps.copilot.models import Draft, DraftStatus, HandoffReason
from apps.copilot.services import pipeline_run, ticket_takeover
from apps.llm.models import LLMCall
from apps.tickets.models import AuthorKind, Channel, Message, PipelineStatus, TicketStatus
from apps.tickets.services import Actor, message_add
from tests.conftest import wait_for
from tests.copilot.conftest import customer_ticket
from tests.llm.fake_openai import Reply

QUESTION = "I forgot my password and the reset email never arrives"
SLOW_ANSWER = Reply.ok(
    json.dumps(
        {
            "reply": "If you have forgotten your password or it is no longer accepted, you "
            "can set a new one yourself.",
            "citations": ["P1"],
            "answerable": True,
        }
    ),
    delay=1.5,
)


def _run_in_thread(message_id: int, results: dict) -> threading.Thread:
    def run() -> None:
        try:
            results["draft"] = pipeline_run(message_id=message_id)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_agent_taking_over_while_the_model_writes_stops_the_send(copilot_ready, fake_openai):
    # given: the model takes 1.5 s
    fake_openai.reset(default=SLOW_ANSWER)
    agent = User.objects.create_user(username="agent-2", password="x", role=Role.AGENT)
    ticket, message = customer_ticket(QUESTION)
    results: dict = {}
    # when: the agent takes over while the pipeline waits on the model (no lock held)
    thread = _run_in_thread(message.id, results)
    wait_for(lambda: fake_openai.requests, timeout=30)
    started = time.monotonic()
    ticket_takeover(ticket=ticket, actor=agent)
    took_over_in = time.monotonic() - started
    thread.join(30)
    # then
    ticket.refresh_from_db()
    draft = results["draft"]
    assert took_over_in < 1.0
    assert (draft.decision, draft.reason, draft.status) == (
        "handed_off",
        HandoffReason.AGENT_TOOK_OVER,
        DraftStatus.PENDING,
    )
    assert ticket.status == TicketStatus.NEW
    assert not ticket.messages.filter(author_kind=AuthorKind.COPILOT).exists()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_newer_customer_message_while_the_model_writes_supersedes_the_draft(
    copilot_ready, fake_openai
):
    # given
    fake_openai.reset(default=SLOW_ANSWER)
    ticket, message = customer_ticket(QUESTION)
    results: dict = {}
    # when: the customer writes again while the model writes
    thread = _run_in_thread(message.id, results)
    wait_for(lambda: fake_openai.requests, timeout=30)
    newer = message_add(
        ticket=ticket, author_kind=AuthorKind.CUSTOMER, body="also my email changed",
        actor=Actor.system(),
    )  # fmt: skip
    thread.join(30)
    # then
    ticket.refresh_from_db()
    message.refresh_from_db()
    draft = results["draft"]
    assert draft.status == DraftStatus.SUPERSEDED
    assert f"newer customer message (#{newer.id})" in draft.reason_detail
    assert draft.reason == HandoffReason.NEWER_MESSAGE
    assert message.pipeline_status == PipelineStatus.DONE
    assert not ticket.messages.filter(author_kind=AuthorKind.COPILOT).exists()
    assert ticket.status == TicketStatus.NEW


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_drafts_a_ticket_posted_through_the_api_and_regenerates_it(
    copilot_ready, celery_worker_process, api_key_client
):
    # (One test for both: each worker start costs ~20 s of the suite.)
    # given
    client = api_key_client()
    # when: a ticket is posted through the API
    created = client.post("/api/v1/tickets", {"body": QUESTION}, format="json").json()
    # then: the worker drafts it and the ticket shows the draft and its decision
    first = wait_for(
        lambda: Draft.objects.filter(message_id=created["message_id"]).first(), timeout=120
    )
    body = client.get(f"/api/v1/tickets/{created['id']}").json()
    assert body["draft"]["id"] == first.id
    assert body["draft"]["intent"] == "reset_password"
    assert body["draft"]["citations"][0]["external_id"] == "account/reset-password.md"
    assert first.decision == "auto_sent" or first.reason != ""
    message = Message.objects.get(pk=created["message_id"])
    assert message.pipeline_status == PipelineStatus.DONE
    expected_status = {
        "auto_sent": "awaiting_customer", "needs_review": "needs_review",
        "handed_off": "handed_off",
    }[first.decision]  # fmt: skip
    assert body["status"] == expected_status
    # when: an integration asks for a new draft
    started = time.monotonic()
    response = client.post(f"/api/v1/tickets/{created['id']}/draft/regenerate")
    answered = time.monotonic() - started
    # then: queued at once; the worker writes generation 2, which supersedes the first
    assert response.status_code == 202 and answered < 2.0
    new = wait_for(
        lambda: Draft.objects.filter(message_id=created["message_id"], generation=2).first(),
        timeout=60,
    )
    first.refresh_from_db()
    assert (new.is_current, new.status) == (True, "pending")
    assert new.decision != "auto_sent"  # never sent on its own
    assert (first.is_current, first.status in ("superseded", "auto_sent")) == (False, True)
    assert client.get(f"/api/v1/tickets/{created['id']}").json()["draft"]["id"] == new.id


def test_the_pipeline_task_has_the_configured_time_limits():
    # given / when
    from django.conf import settings

    from apps.copilot.tasks import pipeline_run_task

    # then: hard = 300 s + the longest model call (draft-fast then draft-strong, each tried
    # twice at 30 s with 8.75 s of back-off and 30 s to read a stream: 2 x 98.75 s) + 15 s
    assert (settings.PIPELINE_TIME_LIMIT_SECONDS, settings.PIPELINE_HARD_TIME_LIMIT_SECONDS) == (
        300,
        513,
    )
    assert (pipeline_run_task.soft_time_limit, pipeline_run_task.time_limit) == (300, 513)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_run_past_its_time_limit_in_a_model_call_is_stopped_and_its_ticket_handed_off(
    copilot_ready, fake_openai, monkeypatch, settings
):
    # given: a model that trickles its answer over 60 s (each piece well within its 60 s
    # timeout), another alias to fall back to (litellm's Router falls back from any error,
    # the time limit's too), and a prefork worker (the pool that enforces time limits)
    # configured to stop pipeline runs after 15 s, on a queue of its own
    import uuid

    from tests.conftest import celery_worker

    answer = {"reply": "Use the reset link. " * 12, "citations": ["P1"], "answerable": True}
    content = json.dumps(answer)
    fake_openai.reset(default=Reply.ok(content, chunk_delay=60 / (len(content) / 8)))
    deployment = {
        "model": "openai/gpt-4o-mini",
        "api_base": fake_openai.base_url,
        "api_key_env": "FAKE_OPENAI_KEY",
    }
    queue = f"time-limit-{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr("apps.tickets.services.pipeline.PIPELINE_QUEUE", queue)
    # Intake sends the limits with the task (web and worker share their settings).
    settings.PIPELINE_TIME_LIMIT_SECONDS, settings.PIPELINE_HARD_TIME_LIMIT_SECONDS = 15, 75
    with celery_worker(
        queues=queue,
        pool="prefork",
        LLM_DEPLOYMENTS=json.dumps(
            {a: [deployment] for a in ("draft-fast", "draft-strong", "judge")}
        ),
        LLM_FALLBACKS=json.dumps({"draft-fast": ["draft-strong"], "draft-strong": []}),
        FAKE_OPENAI_KEY="sk-fake",
        LLM_REQUEST_TIMEOUT="60",
        PIPELINE_TIME_LIMIT="15",
    ):
        started = time.monotonic()
        # when: a customer writes in the widget, so the reply is streamed (intake publishes
        # the pipeline task by name, on commit)
        ticket, message = customer_ticket(QUESTION, channel=Channel.WIDGET)
        draft = wait_for(lambda: Draft.objects.filter(message_id=message.id).first(), timeout=90)
        elapsed = time.monotonic() - started
    # then: the model was writing when the limit passed; the run stopped there (not at the
    # hard limit, not after a fallback's answer) and a person has the ticket
    assert fake_openai.hits >= 1
    stopped_call = LLMCall.objects.get(message_id=message.id)
    assert (stopped_call.status, stopped_call.error_type) == ("failed", "SoftTimeLimitExceeded")
    assert (draft.decision, draft.reason) == ("handed_off", HandoffReason.PIPELINE_FAILED)
    assert draft.reason_detail == "the pipeline ran past its time limit"
    assert elapsed < 40
    message.refresh_from_db()
    ticket.refresh_from_db()
    assert message.pipeline_status == PipelineStatus.FAILED
    assert ticket.status == TicketStatus.HANDED_OFF


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_process_loads_what_the_pipeline_needs_before_its_first_task(
    copilot_ready, monkeypatch
):
    # given: an active classifier, and a prefork worker on a queue of its own
    import os
    import re
    import signal
    import uuid

    from config.celery import app
    from tests.conftest import celery_worker, celery_worker_log

    ready = re.compile(r"worker process ready in [\d.]+ s: (\d+) objects frozen")
    queue = f"warm-{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr("apps.tickets.services.pipeline.PIPELINE_QUEUE", queue)
    with celery_worker(queues=queue, pool="prefork") as node:
        log = celery_worker_log(node)
        first = wait_for(lambda: ready.search(log.read_text()), timeout=120)
        # when: its process dies (a hard time limit, out of memory) and Celery starts another,
        # which must outlive Celery's default 4 s wait for a new process: loading takes longer
        (child,) = app.control.inspect([node], timeout=5).stats()[node]["pool"]["processes"]
        os.kill(child, signal.SIGKILL)
        wait_for(lambda: len(ready.findall(log.read_text())) == 2, timeout=120)
        # and a customer writes: the warmed process's database connections still work
        _ticket, message = customer_ticket(QUESTION)
        draft = wait_for(lambda: Draft.objects.filter(message_id=message.id).first(), timeout=60)
        output = log.read_text()
    # then: litellm, the embedding model, the classifier and Django were loaded and frozen
    # out of the garbage collector's full scans before any task, in both processes
    assert int(first.group(1)) > 100_000
    assert draft.intent == "reset_password"
    assert "warm-up failed" not in output
    assert "Timed out waiting for UP message" not in output


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_messages_waiting_when_a_worker_starts_all_get_their_draft(copilot_ready, monkeypatch):
    # given: three customer messages queued while no worker consumes their queue (a deploy,
    # a crash), so the worker's first tasks arrive right after it has warmed up
    import uuid

    from tests.conftest import celery_worker

    queue = f"backlog-{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr("apps.tickets.services.pipeline.PIPELINE_QUEUE", queue)
    messages = [customer_ticket(QUESTION)[1] for _ in range(3)]
    # when: a worker starts
    with celery_worker(queues=queue):
        drafts = wait_for(
            lambda: (found := Draft.objects.filter(message__in=messages)).count() == 3 and found,
            timeout=60,
        )
    # then: every message was drafted, none stuck on a dead database connection
    assert {draft.intent for draft in drafts} == {"reset_password"}
