"""A provider's limits per deployment (apps/llm/limits.py): calls over them wait their turn,
shared by every thread; a 429's Retry-After is waited for, not hammered."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from apps.core.metrics import redis_client
from apps.llm import limits
from apps.llm.exceptions import ModelUnavailable
from apps.llm.limits import KEY_PREFIX
from apps.llm.models import LLMCall
from apps.llm.services import completion_create
from tests.llm.conftest import fake_deployment
from tests.llm.fake_openai import Reply

ANSWER = json.dumps({"reply": "Refunds take 5 days.", "citations": [], "answerable": True})
MESSAGES = [{"role": "user", "content": "When do I get my refund?"}]


@pytest.fixture(autouse=True)
def _clean_limits():  # type: ignore[no-untyped-def]
    client = redis_client()
    for key in client.scan_iter(f"{KEY_PREFIX}*"):
        client.delete(key)
    for key in client.scan_iter("LIMITS:*llm-tpm*"):
        client.delete(key)
    yield


def _calls_from_threads(count: int) -> list[object]:
    """`count` completions at once, each from a thread of its own (as a threads pool runs
    them); each result or the exception it raised."""

    def call(_: int) -> object:
        try:
            return completion_create(purpose="draft", alias="draft-fast", messages=MESSAGES)
        except Exception as error:
            return error
        finally:
            connections.close_all()

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(call, range(count)))


@pytest.mark.django_db(transaction=True)
def test_calls_over_max_concurrency_wait_their_turn_and_all_succeed(fakes, settings):
    # given: a deployment its provider allows 2 calls at once, each taking 0.4 s
    fake = fakes[0]
    settings.LLM_DEPLOYMENTS = {
        **settings.LLM_DEPLOYMENTS,
        "draft-fast": (fake_deployment(fake, max_concurrency=2),),
    }
    fake.default = Reply.ok(ANSWER, delay=0.4)
    started = time.monotonic()
    # when: 6 threads call at once
    results = _calls_from_threads(6)
    # then: never more than 2 at the provider; all 6 answered, in about 3 rounds
    assert [type(result).__name__ for result in results] == ["CompletionResult"] * 6
    assert fake.hits == 6
    assert fake.max_in_flight == 2
    assert time.monotonic() - started >= 1.1
    assert LLMCall.objects.filter(status=LLMCall.Status.SUCCEEDED).count() == 6
    # and the slots are given back
    assert redis_client().zcard(f"{KEY_PREFIX}draft-fast/0:slots") == 0


@pytest.mark.django_db(transaction=True)
def test_without_limits_the_same_calls_all_go_at_once(fakes, settings):
    # given: the same deployment with no limit set
    fake = fakes[0]
    settings.LLM_DEPLOYMENTS = {**settings.LLM_DEPLOYMENTS, "draft-fast": (fake_deployment(fake),)}
    fake.default = Reply.ok(ANSWER, delay=0.4)
    # when
    results = _calls_from_threads(6)
    # then
    assert all(type(result).__name__ == "CompletionResult" for result in results)
    assert fake.max_in_flight == 6


@pytest.mark.django_db(transaction=True)
def test_a_call_over_tokens_per_minute_waits_then_hands_off_without_reaching_the_provider(
    fakes, settings
):
    # given: 1 500 tokens a minute, and calls that reserve ~1 000 each (a 1 000-token answer)
    fake = fakes[0]
    settings.LLM_DEPLOYMENTS = {
        **settings.LLM_DEPLOYMENTS,
        "draft-fast": (fake_deployment(fake, tokens_per_minute=1500),),
    }
    settings.LLM_LIMIT_WAIT_SECONDS = 1.0
    fake.default = Reply.ok(ANSWER)
    first = completion_create(
        purpose="draft", alias="draft-fast", messages=MESSAGES, max_tokens=1000
    )
    assert first.served_alias == "draft-fast"
    started = time.monotonic()
    # when: a second call within the minute
    with pytest.raises(ModelUnavailable) as raised:
        completion_create(purpose="draft", alias="draft-fast", messages=MESSAGES, max_tokens=1000)
    # then: it waited for its turn, then failed as an unavailable model, naming the limits
    assert time.monotonic() - started >= 0.9
    assert fake.hits == 1
    row = LLMCall.objects.get(id=raised.value.llm_call_id)
    assert row.status == LLMCall.Status.FAILED
    assert "no free turn" in row.error_message


@pytest.mark.django_db(transaction=True)
def test_a_429_with_retry_after_is_waited_for_then_the_call_goes_through(fakes, settings):
    # given: the provider answers 429 "retry after 1 s" to its next two requests (litellm's
    # first try and its retry), then answers
    fake = fakes[0]
    settings.LLM_DEPLOYMENTS = {**settings.LLM_DEPLOYMENTS, "draft-fast": (fake_deployment(fake),)}
    settings.LLM_FALLBACKS = {**settings.LLM_FALLBACKS, "draft-fast": ()}
    fake.enqueue(Reply.error(429, retry_after="1"), Reply.error(429, retry_after="1"))
    fake.default = Reply.ok(ANSWER)
    started = time.monotonic()
    # when
    result = completion_create(purpose="draft", alias="draft-fast", messages=MESSAGES)
    # then: litellm waited the second before its retry, then the gateway paused the alias
    # for every caller for another second, and the call went through: queued, not failed
    assert result.served_alias == "draft-fast"
    assert fake.hits == 3
    assert time.monotonic() - started >= 1.9
    row = LLMCall.objects.get(id=result.llm_call_id)
    assert row.status == LLMCall.Status.SUCCEEDED


@pytest.mark.django_db(transaction=True)
def test_a_provider_that_keeps_answering_429_is_not_hammered_and_the_call_ends_in_bound(
    fakes, settings
):
    # given: a provider that asks every caller to come back in 1 s, and a 3 s wait at most
    fake = fakes[0]
    settings.LLM_DEPLOYMENTS = {**settings.LLM_DEPLOYMENTS, "draft-fast": (fake_deployment(fake),)}
    settings.LLM_FALLBACKS = {**settings.LLM_FALLBACKS, "draft-fast": ()}
    settings.LLM_LIMIT_WAIT_SECONDS = 3.0
    fake.default = Reply.error(429, retry_after="1")
    started = time.monotonic()
    # when
    with pytest.raises(ModelUnavailable):
        completion_create(purpose="draft", alias="draft-fast", messages=MESSAGES)
    # then: about two requests a second at most, and the call gave up near its bound
    elapsed = time.monotonic() - started
    assert 2 <= fake.hits <= 2 * elapsed + 1
    assert 1.9 <= elapsed <= 8
    # and the alias stays paused for the next caller
    assert redis_client().exists(f"{KEY_PREFIX}draft-fast:paused")


@pytest.mark.django_db(transaction=True)
def test_an_alias_paused_by_a_429_holds_every_callers_next_call_until_the_pause_ends(
    fakes, settings
):
    # given: another caller's 429 paused the alias for a second
    fake = fakes[0]
    settings.LLM_DEPLOYMENTS = {**settings.LLM_DEPLOYMENTS, "draft-fast": (fake_deployment(fake),)}
    fake.default = Reply.ok(ANSWER)
    completion_create(purpose="draft", alias="draft-fast", messages=MESSAGES)  # warm Router
    limits.alias_pause("draft-fast", 1.0)
    started = time.monotonic()
    # when
    result = completion_create(purpose="draft", alias="draft-fast", messages=MESSAGES)
    # then: the call reached the provider only once the pause was over
    assert result.served_alias == "draft-fast"
    assert fake.hits == 2
    assert time.monotonic() - started >= 0.9


def test_retry_after_is_read_from_seconds_or_a_date_and_only_from_a_429():
    class Response:
        def __init__(self, value: str) -> None:
            self.headers = {"retry-after": value}

    class Refused(Exception):
        status_code = 429

        def __init__(self, value: str) -> None:
            super().__init__("429")
            self.response = Response(value)

    class Failed(Refused):
        status_code = 500

    assert limits.retry_after_seconds(Refused("7")) == 7.0
    in_ten = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 10))
    assert 8.0 <= limits.retry_after_seconds(Refused(in_ten)) <= 10.0
    assert limits.retry_after_seconds(Refused("soon")) == 0.0
    assert limits.retry_after_seconds(Failed("7")) == 0.0


@pytest.mark.django_db(transaction=True)
def test_limits_fail_open_when_redis_is_away(fakes, settings, monkeypatch):
    # given: limits set, and a Redis that refuses every command
    fake = fakes[0]
    settings.LLM_DEPLOYMENTS = {
        **settings.LLM_DEPLOYMENTS,
        "draft-fast": (fake_deployment(fake, max_concurrency=1),),
    }
    fake.default = Reply.ok(ANSWER)

    class Away:
        def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
            def refuse(*args: object, **kwargs: object) -> None:
                raise ConnectionError("redis is away")

            return refuse

    monkeypatch.setattr(limits.metrics, "redis_client", lambda: Away())
    # when / then: the call is made all the same
    result = completion_create(purpose="draft", alias="draft-fast", messages=MESSAGES)
    assert result.served_alias == "draft-fast"
    assert fake.hits == 1
