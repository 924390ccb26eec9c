"""Evaluation runs: the real pipeline over a gold set, no ticket touched, results per item."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from apps.copilot.services import pipeline_run
from apps.core.exceptions import NotFoundError, ValidationError
from apps.evaluation.goldsets import gold_set_import
from apps.evaluation.models import EvalResult, EvalRun, GoldSet, RunStatus
from apps.evaluation.runs import (
    against_parse,
    eval_batch_run,
    eval_run_create,
    eval_runs_sweep,
)
from apps.tickets.models import Ticket
from apps.triage.models import ClassifierVersion
from tests.copilot.conftest import customer_ticket

pytestmark = pytest.mark.slow

ITEMS = [
    {"question": "I forgot my password and the reset email never came",
     "expected_intent": "reset_password", "expected_articles": ["account/reset-password.md"]},
    {"question": "where is my parcel? the tracking page says nothing",
     "expected_intent": "track_order", "expected_articles": ["shipping/tracking.md"]},
    {"question": "how long until my refund shows up on my card?",
     "expected_intent": "refund_status", "expected_articles": ["returns/refund-timing.md"]},
    {"question": "you took the money for my order twice",
     "expected_intent": "charged_twice", "expected_articles": ["billing/charged-twice.md"]},
    {"question": "there is a payment on my card that I never made",
     "expected_intent": "unauthorized_charge", "expected_articles": []},
    {"question": "what is the capital of Mongolia", "note": "out_of_scope"},
]  # fmt: skip


@pytest.fixture
def gold(db) -> GoldSet:  # type: ignore[no-untyped-def]
    gold_set, report = gold_set_import(
        text="\n".join(json.dumps(item) for item in ITEMS), name="shop"
    )
    assert report.errors == []
    return gold_set


def _item_ids(gold_set: GoldSet) -> list[int]:
    return list(gold_set.items.order_by("id").values_list("pk", flat=True))


def test_a_run_scores_every_item_as_the_live_pipeline_decides_it(copilot_ready, gold):
    # given
    run = eval_run_create(gold_set=gold)
    # when
    done = eval_batch_run(run_id=run.pk, item_ids=_item_ids(gold))
    # then: every item scored, no ticket touched, the configuration recorded
    run.refresh_from_db()
    assert (done, run.status, run.items_done) == (6, RunStatus.SUCCEEDED, 6)
    assert not Ticket.objects.exists()
    active = ClassifierVersion.objects.get(is_active=True)
    assert run.config["classifier_version_id"] == active.pk
    assert run.config["prompt_version"] == 1 and run.config["knowledge_version"]
    metrics = run.metrics
    assert metrics["items"] == 6 and metrics["errors"] == 0
    assert metrics["intent_items"] == 5 and metrics["article_items"] == 4
    assert 0 <= metrics["intent_accuracy"] <= 1 and 0 <= metrics["article_hit5"] <= 1
    assert sum(metrics["decisions"].values()) == 6
    assert {"triage", "retrieve", "draft"} <= set(metrics["latency_ms"])
    assert set(metrics["latency_ms"]["triage"]) == {"p50", "p95", "p99"}
    # and each result is what the same question gets when a customer sends it
    for result in EvalResult.objects.filter(run=run).select_related("item"):
        _, message = customer_ticket(result.item.question)
        draft = pipeline_run(message_id=message.pk)
        assert (draft.intent, draft.decision, draft.reason) == (
            result.intent,
            result.decision,
            result.reason,
        ), result.item.question
        cited = draft.citations[0]["external_id"] if draft.citations else ""
        assert cited == result.cited_article
    # and the figures follow from the per-item results
    results = list(EvalResult.objects.filter(run=run).select_related("item"))
    right_intents = sum(bool(r.intent_correct) for r in results)
    assert metrics["intent_accuracy"] == round(right_intents / 5, 4)
    auto = [r for r in results if r.decision == "auto_sent"]
    assert metrics["auto_sent"] == len(auto)
    assert all(
        r.decision != "auto_sent" or r.correct == (r.cited_article in r.item.expected_articles)
        for r in results
    )


def test_a_batch_delivered_twice_scores_each_item_once_and_a_stalled_run_resumes(
    copilot_ready, gold, settings
):
    # given: a run whose first batch was done, then its worker died
    run = eval_run_create(gold_set=gold)
    first_half = _item_ids(gold)[:3]
    eval_batch_run(run_id=run.pk, item_ids=first_half)
    # when: the same batch is delivered again
    again = eval_batch_run(run_id=run.pk, item_ids=first_half)
    # then: nothing done twice, the run not finished
    run.refresh_from_db()
    assert (again, run.items_done, run.status) == (0, 3, RunStatus.RUNNING)
    # when: its progress stalled past EVAL_STALL_SECONDS, the sweep re-publishes it
    EvalRun.objects.filter(pk=run.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    assert eval_runs_sweep() == {"republished": 1, "failed": 0}
    # and a worker does the rest
    eval_batch_run(run_id=run.pk, item_ids=_item_ids(gold))
    run.refresh_from_db()
    assert (run.status, run.items_done, run.deliveries) == (RunStatus.SUCCEEDED, 6, 2)
    assert EvalResult.objects.filter(run=run).count() == 6


def test_a_run_that_keeps_stalling_fails_saying_where_it_stopped(copilot_ready, gold, settings):
    settings.EVAL_MAX_DELIVERIES = 1
    run = eval_run_create(gold_set=gold)
    eval_batch_run(run_id=run.pk, item_ids=_item_ids(gold)[:2])
    EvalRun.objects.filter(pk=run.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    # when
    assert eval_runs_sweep() == {"republished": 0, "failed": 1}
    # then: failed with the reason, and a late batch changes nothing
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and "stalled at 2/6 items" in run.error
    assert eval_batch_run(run_id=run.pk, item_ids=_item_ids(gold)) == 0
    assert run.metrics == {}


def test_bad_requests_are_refused_with_the_reason(copilot_ready, gold):
    empty = GoldSet.objects.create(name="empty")
    with pytest.raises(ValidationError, match="gold set 'empty' has no items"):
        eval_run_create(gold_set=empty)
    with pytest.raises(ValidationError, match="write kind:version"):
        against_parse(["model:gpt"])
    with pytest.raises(NotFoundError, match="no trained classifier version 999"):
        against_parse(["classifier:999"])
    with pytest.raises(NotFoundError, match="no draft prompt version 7"):
        against_parse(["prompt:7"])
    with pytest.raises(CommandError, match="no gold set named 'nope'"):
        call_command("eval_run", "nope")
    assert not EvalRun.objects.exists()


def test_a_run_against_another_classifier_version_measures_that_version(copilot_ready, gold):
    # given: a second trained version (not active)
    active = ClassifierVersion.objects.get(is_active=True)
    other = ClassifierVersion.objects.get(pk=active.pk)
    other.pk, other.is_active = None, False
    other.save()
    # when
    run = eval_run_create(gold_set=gold, against=against_parse([f"classifier:{other.pk}"]))
    eval_batch_run(run_id=run.pk, item_ids=_item_ids(gold))
    # then: that version classified every item; the live pipeline still uses the active one
    assert run.config["classifier_version_id"] == other.pk
    assert set(
        EvalResult.objects.filter(run=run).values_list("classifier_version_id", flat=True)
    ) == {other.pk}
    _, message = customer_ticket("I forgot my password")
    assert pipeline_run(message_id=message.pk).classifier_version_id == active.pk


@pytest.mark.django_db(transaction=True)
def test_eval_run_runs_on_a_real_worker_and_prints_the_table(copilot_ready, gold):
    from tests.conftest import celery_worker

    out = io.StringIO()
    with celery_worker(queues="eval"):
        call_command("eval_run", "shop", "--timeout", "120", stdout=out)
    printed = out.getvalue()
    run = EvalRun.objects.get()
    assert run.status == RunStatus.SUCCEEDED and run.items_done == 6
    assert f"run #{run.pk}: 6 items queued on the eval queue" in printed
    assert "intent accuracy" in printed and "triage ms p50/p95/p99" in printed


def test_the_api_lists_runs_and_shows_one_with_its_results(copilot_ready, gold, api_key_client):
    run = eval_run_create(gold_set=gold)
    eval_batch_run(run_id=run.pk, item_ids=_item_ids(gold))
    client = api_key_client(scopes=("read",))
    listed = client.get("/api/v1/eval/runs?gold_set=shop")
    assert listed.status_code == 200
    assert [(r["id"], r["status"]) for r in listed.json()] == [(run.pk, "succeeded")]
    shown = client.get(f"/api/v1/eval/runs/{run.pk}")
    assert shown.status_code == 200 and len(shown.json()["results"]) == 6
    assert shown.json()["metrics"]["items"] == 6
    assert client.get("/api/v1/eval/runs/abc").status_code == 404
    assert "limit" in client.get("/api/v1/eval/runs?limit=0").json()["error"]["fields"]


def test_a_real_models_replies_are_judged_and_the_offline_drafters_are_not(
    copilot_ready, fake_openai
):
    from apps.llm.models import LLMCall
    from tests.llm.fake_openai import Reply

    # given: one question carrying an email address, a model that drafts, then judges
    gold_set, _ = gold_set_import(
        text=json.dumps(
            {
                "question": "I forgot my password, my login is kim.lee@example.com",
                "expected_intent": "reset_password",
                "expected_articles": ["account/reset-password.md"],
            }
        ),
        name="judged",
    )
    reply = {"reply": "Use 'Forgot password' on the sign-in page.", "citations": ["P1"]}
    fake_openai.enqueue(
        Reply.ok(json.dumps({**reply, "answerable": True})),
        Reply.ok('Sure: {"faithfulness": 0.75, "relevance": 1}'),
    )
    # when
    run = eval_run_create(gold_set=gold_set)
    eval_batch_run(run_id=run.pk, item_ids=list(gold_set.items.values_list("pk", flat=True)))
    # then: graded, averaged, and the judge never saw the address
    result = EvalResult.objects.get(run=run)
    assert (result.judgement["faithfulness"], result.judgement["relevance"]) == (0.75, 1.0)
    run.refresh_from_db()
    assert (run.metrics["faithfulness"], run.metrics["judged_items"]) == (0.75, 1)
    judge_call = LLMCall.objects.get(purpose="judge")
    assert "kim.lee@example.com" not in json.dumps(fake_openai.requests[-1])
    assert judge_call.redaction["pseudonymised"] is True
    # and a malformed answer is the item's error note, not a failed run
    fake_openai.reset()
    fake_openai.enqueue(
        Reply.ok(json.dumps({**reply, "answerable": True})), Reply.ok("great reply")
    )
    again = eval_run_create(gold_set=gold_set)
    eval_batch_run(run_id=again.pk, item_ids=list(gold_set.items.values_list("pk", flat=True)))
    assert "not the asked JSON" in EvalResult.objects.get(run=again).judgement["error"]
    assert EvalRun.objects.get(pk=again.pk).status == RunStatus.SUCCEEDED


def test_the_offline_drafters_replies_get_no_judgement(copilot_ready, gold):
    run = eval_run_create(gold_set=gold)
    eval_batch_run(run_id=run.pk, item_ids=_item_ids(gold))
    run.refresh_from_db()
    assert run.metrics["judged_items"] == 0 and run.metrics["faithfulness"] is None
    assert all(r.judgement == {} for r in EvalResult.objects.filter(run=run))
