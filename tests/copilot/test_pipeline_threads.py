"""The `pipeline` queue's worker runs threads: drafts wait on the model side by side, as many
as the provider's limits allow, each with its own database connection."""

from __future__ import annotations

import json
import uuid

import pytest

from apps.copilot.models import Draft
from apps.llm.models import LLMCall
from tests.conftest import celery_worker, celery_worker_log, wait_for
from tests.copilot.conftest import customer_ticket
from tests.llm.fake_openai import Reply

QUESTION = "I forgot my password and the reset email never arrives"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_threads_worker_drafts_side_by_side_up_to_the_deployments_limit(
    copilot_ready, fake_openai, monkeypatch
):
    # given: a model that takes 1.5 s a call, which its provider allows 3 at once, and a
    # threads worker with 8 threads on a queue of its own
    answer = {
        "reply": "You can set a new password yourself from the sign-in page.",
        "citations": ["P1"],
        "answerable": True,
    }
    fake_openai.reset(default=Reply.ok(json.dumps(answer), delay=1.5))
    deployment = {
        "model": "openai/gpt-4o-mini",
        "api_base": fake_openai.base_url,
        "api_key_env": "FAKE_OPENAI_KEY",
        "max_concurrency": 3,
    }
    queue = f"threads-{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr("apps.tickets.services.pipeline.PIPELINE_QUEUE", queue)
    with celery_worker(
        queues=queue,
        pool="threads",
        concurrency=8,
        LLM_DEPLOYMENTS=json.dumps(
            {alias: [deployment] for alias in ("draft-fast", "draft-strong", "judge")}
        ),
        FAKE_OPENAI_KEY="sk-fake",
        WORKER_WARM="true",
    ) as node:
        log = celery_worker_log(node)
        wait_for(lambda: "worker process ready" in log.read_text(), timeout=120)
        # when: 8 customers write at once
        messages = [customer_ticket(QUESTION)[1] for _ in range(8)]
        drafts = wait_for(
            lambda: (found := Draft.objects.filter(message__in=messages)).count() == 8 and found,
            timeout=60,
        )
        output = log.read_text()
    # then: every message has its draft from the model; the calls overlapped (a prefork
    # worker of 2 processes would have had at most 2 in flight) up to the provider's 3
    assert {draft.intent for draft in drafts} == {"reset_password"}
    assert (
        LLMCall.objects.filter(message_id__in=[m.id for m in messages], status="succeeded").count()
        == 8
    )
    assert fake_openai.hits == 8
    assert fake_openai.max_in_flight == 3
    assert "Already borrowed" not in output
    assert "warm-up failed" not in output
