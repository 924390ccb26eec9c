"""completion_create over litellm's real HTTP path, against fake OpenAI-compatible servers."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest

from apps.llm.deployments import Deployment
from apps.llm.exceptions import ModelUnavailable
from apps.llm.gateway import litellm
from apps.llm.models import LLMCall
from apps.llm.prompt_format import Passage, sections_render
from apps.llm.router import router_warm
from apps.llm.services import StreamEvent, completion_create
from tests.llm.conftest import FAKE_MODEL
from tests.llm.fake_openai import Reply, ServerProcess

pytestmark = pytest.mark.django_db

ANSWER = {"reply": "Refunds take 5 days.", "citations": ["P1"], "answerable": True}
MESSAGES = [
    {"role": "system", "content": "Answer from the passages."},
    {
        "role": "user",
        "content": sections_render(
            passages=[Passage("P1", "Refunds take 5 days.", "billing/refunds.md")],
            customer_message="When do I get my refund?",
        ),
    },
]


def ok(answer: dict | None = None, **kwargs) -> Reply:  # type: ignore[no-untyped-def]
    return Reply.ok(json.dumps(answer or ANSWER), **kwargs)


def test_success_logs_tokens_and_cost_from_the_price_table(fakes, use_fakes):
    # given
    fast, _, _ = fakes
    use_fakes(draft_fast=[fast])
    fast.default = ok()
    # when
    result = completion_create(
        purpose="draft",
        alias="draft-fast",
        messages=MESSAGES,
        ticket_id=7,
        message_id=70,
        prompt_version=3,
    )
    # then
    prices = litellm().model_cost["gpt-4o-mini"]
    prompt_words = sum(len(m["content"].split()) for m in MESSAGES)
    answer_words = len(json.dumps(ANSWER).split())
    expected_cost = (
        prompt_words * prices["input_cost_per_token"]
        + answer_words * prices["output_cost_per_token"]
    )
    assert result.parsed is not None
    assert result.parsed.as_dict() == {**ANSWER, "citations": ["P1"]}
    assert (result.served_alias, result.model, result.extractive) == (
        "draft-fast",
        "openai/gpt-4o-mini",
        False,
    )
    assert (result.input_tokens, result.output_tokens) == (prompt_words, answer_words)
    row = LLMCall.objects.get(id=result.llm_call_id)
    assert row.status == LLMCall.Status.SUCCEEDED
    assert (row.purpose, row.alias, row.served_alias, row.deployment_id) == (
        "draft",
        "draft-fast",
        "draft-fast",
        "draft-fast/0",
    )
    assert (row.ticket_id, row.message_id, row.prompt_version) == (7, 70, "3")
    assert (row.input_tokens, row.output_tokens) == (prompt_words, answer_words)
    assert row.cost_usd == pytest.approx(Decimal(str(expected_cost)), abs=Decimal("1e-8"))
    assert row.cost_usd > 0
    assert row.latency_ms == result.latency_ms
    assert row.time_to_first_token_ms is None
    assert row.attempted_aliases == ["draft-fast"]
    assert fast.requests[0]["response_format"] == {"type": "json_object"}


@pytest.mark.parametrize("status", [429, 500])
def test_rate_limit_or_server_error_falls_back_to_the_next_deployment(fakes, use_fakes, status):
    # given: the alias's first deployment refuses every request, its second one answers
    first, second, _ = fakes
    use_fakes(draft_fast=[first, second])
    first.default = Reply.error(status)
    second.default = ok()
    # when
    result = completion_create(purpose="draft", alias="draft-fast", messages=MESSAGES)
    # then: retried once on the first deployment, then served by the second
    assert first.hits == 2
    assert second.hits == 1
    assert result.served_alias == "draft-fast"
    assert LLMCall.objects.get(id=result.llm_call_id).deployment_id == "draft-fast/1"


def test_timeout_is_retried_then_falls_back_to_the_fallback_alias(fakes, use_fakes, settings):
    # given: draft-fast answers after its timeout, draft-strong at once
    settings.LLM_REQUEST_TIMEOUT = 0.5
    slow, strong, _ = fakes
    use_fakes(draft_fast=[slow], draft_strong=[strong])
    slow.default = ok(delay=1.5)
    strong.default = ok()
    # when
    started = time.monotonic()
    result = completion_create(purpose="draft", alias="draft-fast", messages=MESSAGES)
    elapsed = time.monotonic() - started
    # then: two tries of 0.5 s (plus litellm's back-off of at most 1.75 s), then the fallback
    assert slow.hits == 2
    assert strong.hits == 1
    assert result.served_alias == "draft-strong"
    assert 1.0 <= elapsed < 1.0 + 1.75 + 1.0
    row = LLMCall.objects.get(id=result.llm_call_id)
    assert row.attempted_aliases == ["draft-fast", "draft-strong"]


def test_malformed_http_body_is_a_failure_that_falls_back(fakes, use_fakes, settings):
    # given
    settings.LLM_NUM_RETRIES = 0
    broken, strong, _ = fakes
    use_fakes(draft_fast=[broken], draft_strong=[strong])
    broken.default = Reply.malformed()
    strong.default = ok()
    # when
    result = completion_create(purpose="draft", alias="draft-fast", messages=MESSAGES)
    # then
    assert (broken.hits, strong.hits) == (1, 1)
    assert result.served_alias == "draft-strong"


@pytest.mark.parametrize(
    "bad_output", ["", "Sure! Refunds take 5 days.", '{"reply": 5, "answerable": true}']
)
def test_empty_or_malformed_model_output_is_a_failure_that_falls_back(
    fakes, use_fakes, settings, bad_output
):
    # given: draft-fast answers 200 with content that breaks the output contract
    settings.LLM_NUM_RETRIES = 0
    sloppy, strong, _ = fakes
    use_fakes(draft_fast=[sloppy], draft_strong=[strong])
    sloppy.default = Reply.ok(bad_output)
    strong.default = ok()
    # when
    result = completion_create(purpose="draft", alias="draft-fast", messages=MESSAGES)
    # then
    assert (sloppy.hits, strong.hits) == (1, 1)
    assert result.served_alias == "draft-strong"
    assert result.parsed is not None and result.parsed.reply == "Refunds take 5 days."
    assert LLMCall.objects.get().attempted_aliases == ["draft-fast", "draft-strong"]


def test_malformed_output_everywhere_raises_model_unavailable(fakes, use_fakes, settings):
    # given
    settings.LLM_NUM_RETRIES = 0
    first, second, _ = fakes
    use_fakes(draft_fast=[first], draft_strong=[second])
    first.default = Reply.empty()
    second.default = Reply.ok("I cannot help with that.")
    # when
    with pytest.raises(ModelUnavailable) as raised:
        completion_create(purpose="draft", alias="draft-fast", messages=MESSAGES)
    # then
    row = LLMCall.objects.get()
    assert raised.value.llm_call_id == row.id
    assert row.status == LLMCall.Status.FAILED
    assert row.error_type == "MalformedOutput"
    assert row.attempted_aliases == ["draft-fast", "draft-strong"]


def test_all_deployments_down_raises_model_unavailable_within_the_timeout_bound(
    fakes, use_fakes, settings
):
    # given: every deployment of both aliases hangs past the 0.4 s timeout or fails
    settings.LLM_REQUEST_TIMEOUT = 0.4
    hanging, failing, _ = fakes
    use_fakes(draft_fast=[hanging], draft_strong=[failing])
    hanging.default = ok(delay=10.0)  # an unenforced timeout: 2 tries, 20 s at least
    failing.default = Reply.error(500)
    router_warm()  # litellm's import and the Router's build are a process's one-off, not the bound
    # when
    started = time.monotonic()
    with pytest.raises(ModelUnavailable) as raised:
        completion_create(purpose="draft", alias="draft-fast", messages=MESSAGES, ticket_id=5)
    elapsed = time.monotonic() - started
    # then: 2 aliases x 2 tries, each bounded by the timeout, plus two back-offs (<= 1.75 s),
    # with slack for a machine busy with the rest of the suite (far below the hang's 20 s)
    assert elapsed < 2 * 2 * 0.4 + 2 * 1.75 + 3.0
    assert (hanging.hits, failing.hits) == (2, 2)
    row = LLMCall.objects.get()
    assert raised.value.llm_call_id == row.id
    assert (row.status, row.ticket_id, row.model) == (LLMCall.Status.FAILED, 5, "")
    assert row.error_type != ""
    assert row.error_message != ""
    assert row.attempted_aliases == ["draft-fast", "draft-strong"]
    assert raised.value.__cause__ is not None  # the provider error is kept as the cause only


def test_circuit_opens_after_consecutive_failures_and_skips_the_dead_alias(
    fakes, use_fakes, settings
):
    # given: Router cooldowns out of the way, so only our breaker can skip the dead alias
    settings.LLM_NUM_RETRIES = 0
    settings.LLM_ALLOWED_FAILS = 1000
    settings.LLM_CIRCUIT_FAILURE_THRESHOLD = 2
    dead, strong, _ = fakes
    use_fakes(draft_fast=[dead], draft_strong=[strong])
    dead.default = Reply.error(500)
    strong.default = ok()
    # when
    for _ in range(3):
        completion_create(purpose="draft", alias="draft-fast", messages=MESSAGES)
    # then: called on the first two messages only, then skipped
    assert dead.hits == 2
    assert strong.hits == 3
    last = LLMCall.objects.order_by("-id").first()
    assert last is not None and last.attempted_aliases == ["draft-strong"]


def test_open_circuit_half_opens_and_one_successful_probe_closes_it(fakes, use_fakes, settings):
    # given: an open circuit whose open period is over, and a provider that is back
    settings.LLM_NUM_RETRIES = 0
    settings.LLM_ALLOWED_FAILS = 1000
    settings.LLM_CIRCUIT_FAILURE_THRESHOLD = 1
    settings.LLM_CIRCUIT_OPEN_SECONDS = 0.3
    flaky, strong, _ = fakes
    use_fakes(draft_fast=[flaky], draft_strong=[strong])
    strong.default = ok()
    flaky.enqueue(Reply.error(500))
    flaky.default = ok()
    completion_create(purpose="draft", alias="draft-fast", messages=MESSAGES)
    completion_create(purpose="draft", alias="draft-fast", messages=MESSAGES)
    assert (flaky.hits, strong.hits) == (1, 2)
    # when
    time.sleep(0.35)
    probe = completion_create(purpose="draft", alias="draft-fast", messages=MESSAGES)
    after = completion_create(purpose="draft", alias="draft-fast", messages=MESSAGES)
    # then
    assert (probe.served_alias, after.served_alias) == ("draft-fast", "draft-fast")
    assert (flaky.hits, strong.hits) == (3, 2)


def test_every_circuit_open_raises_model_unavailable_without_calling_anyone(
    fakes, use_fakes, settings
):
    # given
    settings.LLM_NUM_RETRIES = 0
    settings.LLM_CIRCUIT_FAILURE_THRESHOLD = 1
    first, second, _ = fakes
    use_fakes(draft_fast=[first], draft_strong=[second])
    first.default = Reply.error(500)
    second.default = Reply.error(500)
    with pytest.raises(ModelUnavailable):
        completion_create(purpose="draft", alias="draft-fast", messages=MESSAGES)
    hits_before = (first.hits, second.hits)
    # when
    started = time.monotonic()
    with pytest.raises(ModelUnavailable) as raised:
        completion_create(purpose="draft", alias="draft-fast", messages=MESSAGES)
    # then
    assert time.monotonic() - started < 0.5
    assert (first.hits, second.hits) == hits_before
    assert "circuit open" in LLMCall.objects.get(id=raised.value.llm_call_id).error_message


def test_streaming_delivers_reply_tokens_in_order_with_a_measured_ttft(fakes, use_fakes):
    # given: a provider streaming its JSON 8 characters at a time, 20 ms apart
    fast, _, _ = fakes
    use_fakes(draft_fast=[fast])
    answer = {
        "reply": 'Hello,\nrefunds take "5" days \u00e9\U0001f600.',
        "citations": ["P1"],
        "answerable": True,
    }
    fast.default = Reply.ok(json.dumps(answer), chunk_delay=0.02)
    events: list[tuple[StreamEvent, float]] = []
    # when
    started = time.perf_counter()
    result = completion_create(
        purpose="draft",
        alias="draft-fast",
        messages=MESSAGES,
        stream_callback=lambda event: events.append((event, time.perf_counter())),
    )
    total_ms = (time.perf_counter() - started) * 1000
    # then: only reply text reaches the callback, in order, and before the end
    assert {event.type for event, _ in events} == {"delta"}
    assert "".join(event.text for event, _ in events) == answer["reply"]
    assert len(events) > 3
    first_at_ms = (events[0][1] - started) * 1000
    assert result.ttft_ms is not None
    assert 0 < result.ttft_ms <= first_at_ms + 1
    assert result.ttft_ms < total_ms - 100  # the rest kept streaming after the first token
    row = LLMCall.objects.get(id=result.llm_call_id)
    assert (row.streamed, row.time_to_first_token_ms) == (True, result.ttft_ms)
    assert row.output_tokens == len(json.dumps(answer).split())
    assert row.cost_usd > 0
    assert fast.requests[0]["stream"] is True


def test_streamed_call_without_usage_from_the_provider_still_counts_tokens(fakes, use_fakes):
    # given: a server that never sends a usage chunk
    fast, _, _ = fakes
    use_fakes(draft_fast=[fast])
    fast.default = ok(stream_usage=False)
    # when
    result = completion_create(
        purpose="draft", alias="draft-fast", messages=MESSAGES, stream_callback=lambda e: None
    )
    # then: litellm's tokenizer counts them instead
    row = LLMCall.objects.get(id=result.llm_call_id)
    assert row.input_tokens > 0
    assert row.output_tokens > 0
    assert row.cost_usd > 0


def test_streaming_failure_falls_back_before_any_token(fakes, use_fakes, settings):
    # given
    settings.LLM_NUM_RETRIES = 0
    down, strong, _ = fakes
    use_fakes(draft_fast=[down], draft_strong=[strong])
    down.default = Reply.error(500)
    strong.default = ok()
    events: list[StreamEvent] = []
    # when
    result = completion_create(
        purpose="draft", alias="draft-fast", messages=MESSAGES, stream_callback=events.append
    )
    # then
    assert result.served_alias == "draft-strong"
    assert "".join(e.text for e in events) == ANSWER["reply"]


def test_streamed_malformed_output_resets_the_stream_before_the_fallback(
    fakes, use_fakes, settings
):
    # given: draft-fast streams a reply, then breaks the contract
    settings.LLM_NUM_RETRIES = 0
    sloppy, strong, _ = fakes
    use_fakes(draft_fast=[sloppy], draft_strong=[strong])
    sloppy.default = Reply.ok('{"reply": "Half an answer", "answerable": "maybe"}')
    strong.default = ok()
    events: list[StreamEvent] = []
    # when
    result = completion_create(
        purpose="draft", alias="draft-fast", messages=MESSAGES, stream_callback=events.append
    )
    # then
    kinds = [e.type for e in events]
    reset_at = kinds.index("reset")
    assert "".join(e.text for e in events[:reset_at]) == "Half an answer"
    assert "".join(e.text for e in events[reset_at + 1 :]) == ANSWER["reply"]
    assert result.served_alias == "draft-strong"


def test_stream_cut_mid_way_resets_and_falls_back(fakes, use_fakes, settings):
    # given: draft-fast's connection drops half-way through its JSON
    settings.LLM_NUM_RETRIES = 0
    cut, strong, _ = fakes
    use_fakes(draft_fast=[cut], draft_strong=[strong])
    cut.default = Reply.cut(json.dumps({**ANSWER, "reply": "A long reply that never ends"}))
    strong.default = ok()
    events: list[StreamEvent] = []
    # when
    result = completion_create(
        purpose="draft", alias="draft-fast", messages=MESSAGES, stream_callback=events.append
    )
    # then
    assert [e.type for e in events].count("reset") == 1
    after_reset = events[[e.type for e in events].index("reset") + 1 :]
    assert "".join(e.text for e in after_reset) == ANSWER["reply"]
    assert result.served_alias == "draft-strong"


def test_a_stream_trickling_past_its_timeout_is_abandoned(fakes, use_fakes, settings):
    # given: each chunk arrives in time, but the whole stream would take ~3 s (timeout 1 s)
    settings.LLM_NUM_RETRIES = 0
    settings.LLM_REQUEST_TIMEOUT = 1.0
    slow, strong, _ = fakes
    use_fakes(draft_fast=[slow], draft_strong=[strong])
    slow.default = ok(chunk_delay=0.3)
    strong.default = ok()
    # when
    started = time.monotonic()
    result = completion_create(
        purpose="draft", alias="draft-fast", messages=MESSAGES, stream_callback=lambda e: None
    )
    # then
    assert time.monotonic() - started < 2.0
    assert result.served_alias == "draft-strong"


def test_a_failing_stream_callback_does_not_fail_the_completion(fakes, use_fakes):
    # given
    fast, _, _ = fakes
    use_fakes(draft_fast=[fast])
    fast.default = ok()
    calls: list[StreamEvent] = []

    def broken(event: StreamEvent) -> None:
        calls.append(event)
        raise ConnectionError("redis is down")

    # when
    result = completion_create(
        purpose="draft", alias="draft-fast", messages=MESSAGES, stream_callback=broken
    )
    # then: called once, then left alone; the draft is complete
    assert len(calls) == 1
    assert result.parsed is not None and result.parsed.reply == ANSWER["reply"]
    assert fast.hits == 1


def test_a_celery_soft_time_limit_is_not_mistaken_for_a_provider_failure(fakes, use_fakes):
    # given: the task's soft time limit fires while tokens stream
    from celery.exceptions import SoftTimeLimitExceeded

    fast, strong, _ = fakes
    use_fakes(draft_fast=[fast], draft_strong=[strong])
    fast.default = ok()

    def out_of_time(event: StreamEvent) -> None:
        raise SoftTimeLimitExceeded()

    # when / then: it propagates; no fallback is tried
    with pytest.raises(SoftTimeLimitExceeded):
        completion_create(
            purpose="draft", alias="draft-fast", messages=MESSAGES, stream_callback=out_of_time
        )
    assert (fast.hits, strong.hits) == (1, 0)


def test_unstructured_call_returns_raw_text(fakes, use_fakes):
    # given
    fast, _, _ = fakes
    use_fakes(judge=[fast])
    fast.default = Reply.ok("0.8")
    # when
    result = completion_create(purpose="judge", alias="judge", messages=MESSAGES, structured=False)
    # then
    assert (result.text, result.parsed) == ("0.8", None)
    assert "response_format" not in fast.requests[0]


def test_unknown_alias_is_refused_and_nothing_is_logged():
    # given / when
    from apps.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as raised:
        completion_create(purpose="draft", alias="draft-huge", messages=MESSAGES)
    # then
    assert raised.value.field == "alias"
    assert LLMCall.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_call_outside_any_transaction_is_logged_and_committed(fakes, use_fakes):
    # given: no surrounding transaction, so the row is written with an asynchronous commit
    fast, _, _ = fakes
    use_fakes(draft_fast=[fast])
    fast.default = ok()
    # when
    result = completion_create(purpose="draft", alias="draft-fast", messages=MESSAGES)
    # then
    assert LLMCall.objects.filter(id=result.llm_call_id, status="succeeded").count() == 1


def test_router_warm_runs_offline_and_logs_nothing():
    # given / when
    from apps.llm.router import router_warm

    router_warm()
    # then
    assert LLMCall.objects.count() == 0


def test_fake_server_in_its_own_process_streams_through_litellm_and_times_each_answer(
    settings,
):
    # given: the benchmarks' fake provider in a process of its own, scripted over its pipe
    server = ServerProcess()
    try:
        answer = {"reply": "Refunds take five days.", "citations": ["P1"], "answerable": True}
        server.reset(default=Reply.ok(json.dumps(answer), chunk_chars=4, chunk_delay=0.01))
        settings.LLM_DEPLOYMENTS = {
            **settings.LLM_DEPLOYMENTS,
            "draft-fast": (
                Deployment(
                    model=FAKE_MODEL, api_base=server.base_url, api_key_env="FAKE_OPENAI_KEY"
                ),
            ),
        }
        deltas: list[str] = []
        # when
        result = completion_create(
            purpose="draft",
            alias="draft-fast",
            messages=MESSAGES,
            stream_callback=lambda event: deltas.append(event.text),
        )
        # then: the reply streamed in pieces, and the server timed the one request it served
        # (about 20 chunks 10 ms apart)
        assert "".join(deltas) == answer["reply"]
        assert len(deltas) > 3
        assert result.model == FAKE_MODEL
        (seconds,) = server.answer_seconds()
        assert 0.1 < seconds < 5.0
    finally:
        server.stop()


def test_a_model_call_inside_a_web_request_is_refused_and_nothing_is_logged(rf):
    # given: a view that (wrongly) calls the model, behind the request marker
    from apps.core.web import WebRequestMarkerMiddleware
    from apps.llm.exceptions import ModelCallRefused

    def view(request):  # type: ignore[no-untyped-def]
        completion_create(purpose="draft", alias="draft-fast", messages=[{"role": "user"}])

    # when / then
    with pytest.raises(ModelCallRefused, match="inside a web request"):
        WebRequestMarkerMiddleware(view)(rf.get("/"))
    assert not LLMCall.objects.exists()
