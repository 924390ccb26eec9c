"""The gateway's public services: `completion_create` (one model call) and `budget_check`.

How the copilot uses it:

    from apps.llm import prompt_format, structured
    from apps.llm.exceptions import BudgetExhausted, ModelUnavailable
    from apps.llm.services import StreamEvent, completion_create

    user = prompt_format.sections_render(passages=passages, customer_message=text)
    try:
        result = completion_create(
            purpose="draft", alias="draft-fast", ticket_id=ticket.id, message_id=message.id,
            prompt_version=template.version,
            messages=[{"role": "system", "content": template.body + structured.OUTPUT_INSTRUCTIONS},
                      {"role": "user", "content": user}],
            stream_callback=publish,  # StreamEvent("delta", text) / StreamEvent("reset", "")
        )
    except BudgetExhausted:   -> handoff reason "budget"
    except ModelUnavailable:  -> handoff reason "model unavailable"
    result.parsed.reply, result.parsed.citations, result.parsed.answerable, result.model, ...

What one call does: budget check -> circuit breaker filters the alias and its fallbacks ->
Router call (retries, deployment order, cooldowns, fallbacks, timeouts) -> for structured
calls the output is parsed, and malformed or empty output counts as a failure of the alias
that produced it, so the next alias is tried -> one LLMCall row, success or failure.
It never raises a provider exception and never waits longer than the bound in router.py.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from apps.core import metrics
from apps.core.db import connections_release, in_transaction
from apps.core.exceptions import ValidationError
from apps.core.timelimits import soft_time_limit_check
from apps.core.tracing import span
from apps.core.web import in_web_request
from apps.llm import circuit, limits
from apps.llm.deployments import LOCAL_EXTRACTIVE, Deployment
from apps.llm.exceptions import (
    BudgetExhausted,
    MalformedOutput,
    ModelCallRefused,
    ModelUnavailable,
)
from apps.llm.gateway import litellm
from apps.llm.models import LLMCall
from apps.llm.router import deployment_for, deployment_id, router
from apps.llm.selectors import llm_spend, spend_key
from apps.llm.structured import (
    RESPONSE_FORMAT,
    ReplyStreamExtractor,
    StructuredReply,
    reply_parse,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamEvent:
    """What `stream_callback` receives while a completion streams.

    "delta": `text` is the next piece of the reply (for structured calls: of the "reply"
    field only, already JSON-decoded). "reset": the text sent so far is void (that model
    failed mid-stream or its output was malformed) and another model starts from scratch.
    """

    type: Literal["delta", "reset"]
    text: str = ""


StreamCallback = Callable[[StreamEvent], None]


@dataclass(frozen=True)
class CompletionResult:
    text: str  # the model's raw output
    parsed: StructuredReply | None  # set for structured calls (the default)
    alias: str  # what was asked for
    served_alias: str  # what answered (differs after a fallback)
    model: str  # the deployment's model, e.g. "openai/gpt-4o-mini" or "local/extractive"
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal
    latency_ms: int
    ttft_ms: int | None  # time to the first streamed reply text; None when not streamed
    llm_call_id: int
    cache_hit: bool = False

    @property
    def extractive(self) -> bool:
        """True when the offline extractive drafter wrote this, not a language model."""
        return self.model == LOCAL_EXTRACTIVE


@dataclass
class _Attempt:
    """What one Router call (one alias plus the fallbacks handed to it) produced."""

    served_alias: str = ""
    deployment: Deployment | None = None
    deployment_id: str = ""
    response: Any = None
    text: str = ""
    ttft_ms: int | None = None
    cache_hit: bool = False
    input_tokens: int = 0
    output_tokens: int = 0


class _Publisher:
    """Calls the caller's stream callback; a failing callback stops streaming, not the call.

    Streaming is a preview: if publishing breaks (Redis down), the draft still completes.
    """

    def __init__(self, callback: StreamCallback) -> None:
        self.callback: StreamCallback | None = callback

    def send(self, event: StreamEvent) -> None:
        if self.callback is None:
            return
        try:
            self.callback(event)
        except SoftTimeLimitExceeded:
            raise
        except Exception:
            logger.exception("stream callback failed; streaming stops, the completion goes on")
            self.callback = None


def budget_check(*, ticket_id: int | None, customer_id: int | None = None) -> None:
    """Raise BudgetExhausted when today's, this month's, the ticket's or the customer's (today)
    spend reached its limit: one visitor cannot spend everyone's budget.

    A limit of 0 is off. Checked before a call, so the call that crosses a limit completes
    and the next one is refused.
    """
    spend = llm_spend(ticket_id=ticket_id, customer_id=customer_id)
    limits = (
        ("daily", spend.today_usd, settings.LLM_BUDGET_DAILY_USD),
        ("monthly", spend.month_usd, settings.LLM_BUDGET_MONTHLY_USD),
        (
            "ticket",
            spend.ticket_usd if ticket_id is not None else None,
            settings.LLM_BUDGET_TICKET_USD,
        ),
        (
            "customer",
            spend.customer_today_usd if customer_id is not None else None,
            settings.LLM_BUDGET_CUSTOMER_DAILY_USD,
        ),
    )
    for scope, spent, limit in limits:
        if spent is not None and limit > 0 and spent >= Decimal(str(limit)):
            raise BudgetExhausted(
                f"the {scope} LLM budget of {limit} USD is spent ({spent:.4f} USD)",
                scope=scope,
                spent_usd=float(spent),
                limit_usd=float(limit),
            )


def _chain(alias: str) -> list[str]:
    return [alias, *settings.LLM_FALLBACKS.get(alias, ())]


def alias_models(alias: str) -> list[str]:
    """The models a call to `alias` may be served by: its deployments' and its fallbacks'."""
    return [
        deployment.model
        for name in _chain(alias)
        for deployment in settings.LLM_DEPLOYMENTS.get(name, ())
    ]


def alias_leaves_machine(alias: str) -> bool:
    """Whether a call to `alias` may send its text to a provider: some deployment of the
    alias or of its fallbacks is not the local drafter."""
    return any(
        not deployment.is_local
        for name in _chain(alias)
        for deployment in settings.LLM_DEPLOYMENTS.get(name, ())
    )


def _served(hidden: dict[str, Any]) -> tuple[str, str]:
    headers = hidden.get("additional_headers") or {}
    model_id = str(hidden.get("model_id") or "")
    served = str(headers.get("x-litellm-model-group") or model_id.rpartition("/")[0])
    return served, model_id


def _call(
    aliases: Sequence[str],
    messages: list[dict],
    extra: dict[str, Any],
    publisher: _Publisher | None,
    structured: bool,
    started: float,
) -> _Attempt:
    first, rest = aliases[0], list(aliases[1:])
    kwargs: dict[str, Any] = {
        "model": first,
        "messages": messages,
        # Our fallbacks for this call only: the chain minus aliases whose circuit is open.
        "fallbacks": [{first: rest}] if rest else [],
        **extra,
    }
    if structured:
        kwargs["response_format"] = RESPONSE_FORMAT
    attempt = _Attempt()
    if publisher is None:
        response = router().completion(**kwargs)
        soft_time_limit_check()  # the Router may have swallowed it and fallen back
        attempt.response = response
        attempt.text = response.choices[0].message.content or ""
        attempt.input_tokens, attempt.output_tokens = _tokens(getattr(response, "usage", None))
        hidden = getattr(response, "_hidden_params", {}) or {}
    else:
        kwargs["stream"] = True
        kwargs["stream_options"] = {"include_usage": True}
        stream = router().completion(**kwargs)
        soft_time_limit_check()
        # Opening the stream is bounded by the Router's timeout; this bounds the reading.
        reading_started = time.perf_counter()
        hidden = getattr(stream, "_hidden_params", {}) or {}
        attempt.served_alias, attempt.deployment_id = _served(hidden)
        deployment = deployment_for(attempt.deployment_id)
        # A provider that keeps trickling tokens must not hold the call past its timeout.
        deadline = reading_started + (
            (deployment.timeout if deployment else None) or settings.LLM_REQUEST_TIMEOUT
        )
        extractor = ReplyStreamExtractor() if structured else None
        pieces: list[str] = []
        chunks: list[Any] = []
        usage = None
        try:
            for chunk in stream:
                # litellm's stream wrapper turns the limit into a mid-stream error to fall
                # back from; its next chunk may come from the fallback model.
                soft_time_limit_check()
                chunks.append(chunk)
                usage = getattr(chunk, "usage", None) or usage
                if time.perf_counter() > deadline:
                    raise TimeoutError(f"stream from {attempt.served_alias} passed its timeout")
                delta = chunk.choices[0].delta.content if chunk.choices else None
                if not delta:
                    continue
                pieces.append(delta)
                visible = extractor.feed(delta) if extractor else delta
                if visible:
                    if attempt.ttft_ms is None:
                        attempt.ttft_ms = int((time.perf_counter() - started) * 1000)
                    publisher.send(StreamEvent("delta", visible))
        except Exception as error:
            error.served_alias = attempt.served_alias  # type: ignore[attr-defined]
            raise
        attempt.text = "".join(pieces)
        if usage is None:
            # The provider ignored include_usage: let litellm rebuild the response and count.
            attempt.response = litellm().stream_chunk_builder(chunks, messages=messages)
            usage = getattr(attempt.response, "usage", None)
        attempt.input_tokens, attempt.output_tokens = _tokens(usage)
    attempt.served_alias, attempt.deployment_id = _served(hidden)
    attempt.deployment = deployment_for(attempt.deployment_id)
    attempt.cache_hit = bool(hidden.get("cache_hit"))
    return attempt


def _turn(alias: str, messages: list[dict], max_tokens: int | None) -> AbstractContextManager:
    """The wait for a turn on `alias` (apps/llm/limits.py): while a 429 pauses it, and on the
    deployment the Router will call when that deployment has limits. A retry or a fallback
    the Router makes after a failure runs within the same turn."""
    model_id, deployment = deployment_id(alias, 0), None
    if any(limits.limited(item) for item in settings.LLM_DEPLOYMENTS.get(alias, ())):
        try:
            chosen = router().get_available_deployment(model=alias, messages=messages)
            model_id = str(chosen["model_info"]["id"])
        except Exception as error:  # every deployment cooling down: the Router will say so
            logger.info("no deployment of %s available to wait for: %r", alias, error)
        deployment = deployment_for(model_id)
    return limits.deployment_turn(
        alias,
        model_id,
        deployment,
        tokens=limits.tokens_estimate(messages, max_tokens),
        lease_seconds=settings.LLM_CALL_WORST_CASE_SECONDS + limits.LEASE_SECONDS,
    )


def _cost(attempt: _Attempt) -> Decimal:
    """USD from the token counts and litellm's local price table (0 for local/extractive).

    cost_per_token is the table lookup completion_cost does, without rebuilding a response
    from the stream's chunks (which cost ~10 ms per streamed call).
    """
    deployment = attempt.deployment
    if deployment is None or deployment.is_local:
        return Decimal("0")
    kwargs: dict[str, Any] = {
        "model": deployment.model,
        "prompt_tokens": attempt.input_tokens,
        "completion_tokens": attempt.output_tokens,
    }
    if deployment.input_cost_per_token is not None or deployment.output_cost_per_token is not None:
        kwargs["custom_cost_per_token"] = {
            "input_cost_per_token": deployment.input_cost_per_token or 0.0,
            "output_cost_per_token": deployment.output_cost_per_token or 0.0,
        }
    try:
        prompt_cost, completion_cost = litellm().cost_per_token(**kwargs)
    except Exception:
        # An unpriced model costs 0 here: say so loudly, budgets cannot see it.
        logger.warning("no price for %s; set input/output_cost_per_token", deployment.model)
        return Decimal("0")
    return Decimal(str(prompt_cost + completion_cost)).quantize(Decimal("1e-8"))


def _tokens(usage: Any) -> tuple[int, int]:
    if usage is None:
        return 0, 0
    return int(usage.prompt_tokens or 0), int(usage.completion_tokens or 0)


def _traced(function: Callable[..., CompletionResult]) -> Callable[..., CompletionResult]:
    """The model call as a span (when tracing is on): alias asked, model served, tokens, cost."""

    @functools.wraps(function)
    def traced(**kwargs: Any) -> CompletionResult:
        asked = {"llm.purpose": kwargs["purpose"], "llm.alias": kwargs["alias"]}
        with span("llm.completion", **asked) as current:
            result = function(**kwargs)
            if current is not None:
                current.set_attributes(
                    {
                        "llm.served_alias": result.served_alias,
                        "llm.model": result.model,
                        "llm.input_tokens": result.input_tokens,
                        "llm.output_tokens": result.output_tokens,
                        "llm.cost_usd": float(result.cost_usd),
                        "llm.call_id": result.llm_call_id,
                    }
                )
            return result

    return traced


@_traced
def completion_create(
    *,
    purpose: str,
    alias: str,
    messages: list[dict],
    ticket_id: int | None = None,
    message_id: int | None = None,
    prompt_version: str | int | None = None,
    stream_callback: StreamCallback | None = None,
    structured: bool = True,
    max_tokens: int | None = None,
    temperature: float | None = None,
    redaction: dict | None = None,
    customer_id: int | None = None,
) -> CompletionResult:
    """One completion through the Router, logged as one LLMCall row whatever happens.

    `structured=True` asks for the JSON contract of `apps.llm.structured` and parses it into
    `result.parsed`. With `stream_callback`, reply text is sent as it arrives (StreamEvent).
    Raises BudgetExhausted (nothing is called), ModelUnavailable (every alias in the chain
    failed, timed out, had its circuit open, or answered malformed output), or
    ValidationError (unknown alias, no messages: a caller's bug), ModelCallRefused when
    called inside a web request or a database transaction (a caller's bug: model calls run
    on workers, outside transactions). Not idempotent: each call is a model call and a row;
    the caller decides when to call again.
    """
    if in_web_request():
        raise ModelCallRefused(
            f"a {purpose} model call inside a web request: schedule a Celery task instead"
        )
    if in_transaction():
        raise ModelCallRefused(
            f"a {purpose} model call inside a database transaction: call the model first"
        )
    if alias not in settings.LLM_DEPLOYMENTS:
        configured = ", ".join(sorted(settings.LLM_DEPLOYMENTS))
        raise ValidationError(
            f"unknown LLM alias {alias!r}; configured: {configured}",
            field="alias",
        )
    if not messages:
        raise ValidationError("a completion needs at least one message", field="messages")
    started = time.perf_counter()
    row = LLMCall(
        purpose=purpose,
        alias=alias,
        prompt_version="" if prompt_version is None else str(prompt_version),
        ticket_id=ticket_id,
        message_id=message_id,
        customer_id=customer_id,
        streamed=stream_callback is not None,
        redaction=redaction or {},
        request_messages=messages,
    )
    try:
        budget_check(ticket_id=ticket_id, customer_id=customer_id)
    except BudgetExhausted as error:
        row.status = LLMCall.Status.BUDGET_EXHAUSTED
        row.error_type = "BudgetExhausted"
        row.error_message = error.message
        _log_save(row)
        error.llm_call_id = row.id
        raise

    extra: dict[str, Any] = {}
    if max_tokens is not None:
        extra["max_tokens"] = max_tokens
    if temperature is not None:
        extra["temperature"] = temperature

    publisher = _Publisher(stream_callback) if stream_callback is not None else None
    # The model may take seconds: this thread's database connection goes back to the pool
    # meanwhile (a pipeline worker's dozens of threads would otherwise hold one each, idle).
    connections_release()
    remaining = _chain(alias)
    attempted: list[str] = []
    emitted = False
    last_error: Exception | None = None
    while remaining:
        states = circuit.circuit_allowed(remaining)
        allowed = [state.alias for state in states]
        # A success on a closed circuit with no failures has nothing to reset in Redis.
        clean = {state.alias for state in states if state.state == "closed" and not state.failures}
        if not allowed:
            if last_error is None:
                last_error = ModelUnavailable(
                    f"circuit open for {', '.join(remaining)}", detail="circuit breaker"
                )
            break
        if emitted and publisher is not None:
            publisher.send(StreamEvent("reset"))
            emitted = False
        try:
            try:
                with _turn(allowed[0], messages, max_tokens):
                    attempt = _call(allowed, messages, extra, publisher, structured, started)
            except (SoftTimeLimitExceeded, limits.NoTurn):
                raise
            except Exception:
                soft_time_limit_check()  # a limit litellm wrapped is not a provider failure
                raise
        except limits.NoTurn as error:  # the provider's limits, not a failure of it
            last_error = error
            break
        except SoftTimeLimitExceeded:
            # The task's own time limit is the caller's business, not a provider failure;
            # the call still gets its row (the tokens of a fallback the Router made after
            # swallowing the limit are unknown).
            _log_time_limit(row, started, [*attempted, *allowed])
            raise
        except Exception as error:  # every provider error ends here, never reaches the caller
            logger.warning("LLM call for %s failed on %s: %r", purpose, allowed, error)
            served = getattr(error, "served_alias", "")
            failed = allowed[: allowed.index(served) + 1] if served in allowed else allowed
            pause = limits.retry_after_seconds(error)
            for name in failed if pause else ():
                limits.alias_pause(name, pause)  # every caller waits the time asked
            if pause and time.perf_counter() - started + pause < settings.LLM_LIMIT_WAIT_SECONDS:
                # Rate limited, not down: this call waits too, then tries the same aliases
                # again (not counted against their circuits).
                emitted = emitted or bool(served)
                last_error = error
                continue
            for name in failed:
                circuit.circuit_record_failure(name)
            attempted.extend(failed)
            emitted = emitted or bool(served)
            last_error = error
            remaining = allowed[allowed.index(served) + 1 :] if served in allowed else []
            continue
        served = attempt.served_alias if attempt.served_alias in allowed else allowed[0]
        position = allowed.index(served)
        for name in allowed[:position]:
            circuit.circuit_record_failure(name)
        attempted.extend(allowed[: position + 1])
        parsed = None
        if structured:
            try:
                parsed = reply_parse(attempt.text)
            except MalformedOutput as error:
                circuit.circuit_record_failure(served)
                error.detail = f"{served}: {error.detail or attempt.text[:200]}"
                last_error = error
                emitted = publisher is not None
                remaining = allowed[position + 1 :]
                continue
        if served not in clean:
            circuit.circuit_record_success(served)
        input_tokens, output_tokens = attempt.input_tokens, attempt.output_tokens
        row.status = LLMCall.Status.SUCCEEDED
        row.served_alias = served
        row.model = attempt.deployment.model if attempt.deployment else served
        row.deployment_id = attempt.deployment_id
        row.input_tokens = input_tokens
        row.output_tokens = output_tokens
        row.cost_usd = _cost(attempt)
        row.latency_ms = int((time.perf_counter() - started) * 1000)
        row.time_to_first_token_ms = attempt.ttft_ms
        row.cache_hit = attempt.cache_hit
        row.attempted_aliases = attempted
        row.response_text = attempt.text
        _log_save(row)
        return CompletionResult(
            text=attempt.text,
            parsed=parsed,
            alias=alias,
            served_alias=served,
            model=row.model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost_usd=row.cost_usd,
            latency_ms=row.latency_ms,
            ttft_ms=attempt.ttft_ms,
            llm_call_id=row.id,
            cache_hit=attempt.cache_hit,
        )

    row.status = LLMCall.Status.FAILED
    row.error_type = type(last_error).__name__ if last_error else "ModelUnavailable"
    row.error_message = _error_message(last_error)[:4000]
    row.latency_ms = int((time.perf_counter() - started) * 1000)
    row.attempted_aliases = attempted
    _log_save(row)
    raise ModelUnavailable(
        f"no model answered for {alias!r} (tried {', '.join(attempted) or 'none'}): "
        f"{row.error_type}",
        llm_call_id=row.id,
        detail=row.error_message,
    ) from last_error


def _log_time_limit(row: LLMCall, started: float, attempted: list[str]) -> None:
    """Best effort: the limit may have broken the database connection mid-query, and the
    time limit, not a logging error, is what the caller must see."""
    row.status = LLMCall.Status.FAILED
    row.error_type = "SoftTimeLimitExceeded"
    row.error_message = "the task's time limit passed during the call"
    row.latency_ms = int((time.perf_counter() - started) * 1000)
    row.attempted_aliases = attempted
    try:
        _log_save(row)
    except Exception:
        logger.warning("the LLM call stopped by the time limit could not be logged")


def _log_save(row: LLMCall) -> None:
    """Insert the call's row without waiting for the WAL flush when that is safe.

    The row is a log entry: losing the last few milliseconds of them in a database crash is
    acceptable, an fsync per model call (several ms) is not. Only outside the caller's own
    transaction: SET LOCAL inside it would make the caller's commit asynchronous too.
    """
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        row.save()
    else:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
            row.save()
    metrics.metrics_record(_call_metrics(row))
    if row.cost_usd:
        _spend_cache_add(row)


# Raise the kept totals only while they are kept: a key that expired is summed afresh.
_SPEND_ADD = """
if redis.call('exists', KEYS[1]) == 1 then
  redis.call('hincrbyfloat', KEYS[1], 'today', ARGV[1])
  redis.call('hincrbyfloat', KEYS[1], 'month', ARGV[1])
end
"""


def _spend_cache_add(row: LLMCall) -> None:
    """Add a logged call's cost to the day's and month's totals kept in Redis (see
    selectors.llm_spend). A call racing the totals' refresh from the table may be counted
    twice or not at all until they expire (`LLM_SPEND_CACHE_SECONDS`): a budget's edge moves
    by the cost of the calls logged during one refresh."""
    if not settings.LLM_SPEND_CACHE_SECONDS:
        return
    key = spend_key(row.created_at or timezone.now())
    try:
        metrics.redis_client().eval(_SPEND_ADD, 1, key, str(row.cost_usd))
    except Exception as error:  # the totals expire and are summed again from the table
        logger.warning("LLM spend not added in Redis: %r", error)


def _call_metrics(row: LLMCall) -> metrics.Batch:
    model = row.model or "none"
    batch = metrics.Batch().inc(
        metrics.LLM_CALLS, purpose=row.purpose, alias=row.alias, model=model, outcome=row.status
    )
    alias = row.served_alias or row.alias
    batch.inc(metrics.LLM_TOKENS, row.input_tokens, alias=alias, model=model, direction="input")
    batch.inc(metrics.LLM_TOKENS, row.output_tokens, alias=alias, model=model, direction="output")
    batch.inc(metrics.LLM_COST, float(row.cost_usd), alias=alias, model=model)
    return batch.observe(metrics.LLM_CALL_DURATION, row.latency_ms / 1000, alias=row.alias)


def _error_message(error: Exception | None) -> str:
    if error is None:
        return "no alias was available"
    detail = getattr(error, "detail", "")
    message = getattr(error, "message", None) or str(error)
    return f"{message} ({detail})" if detail else message


def cache_hit_record(
    *,
    purpose: str,
    alias: str,
    model: str,
    ticket_id: int | None = None,
    message_id: int | None = None,
    prompt_version: str | int | None = None,
    latency_ms: int = 0,
) -> LLMCall:
    """Log a reply the caller served from its own cache (no model call, no cost).

    The copilot's reply cache calls this so the LLMCall log holds every answer and the
    cache hit rate is a query (share of rows with cache_hit). `model` is the one that wrote
    the cached reply.
    """
    return LLMCall.objects.create(
        purpose=purpose,
        alias=alias,
        served_alias=alias,
        model=model,
        ticket_id=ticket_id,
        message_id=message_id,
        prompt_version="" if prompt_version is None else str(prompt_version),
        latency_ms=latency_ms,
        cache_hit=True,
        status=LLMCall.Status.SUCCEEDED,
    )


# --- erasure and retention (apps/privacy calls these) ---------------------------------------


def llm_calls_text_erase(
    *, ticket_ids: Sequence[int] = (), customer_ids: Sequence[int] = ()
) -> int:
    """Empty the prompt, answer and error text of these tickets' and customers' calls; the
    tokens, cost, latency and outcome stay (budgets and metrics still add up)."""
    return (
        LLMCall.objects.filter(Q(ticket_id__in=ticket_ids) | Q(customer_id__in=customer_ids))
        .exclude(request_messages=[], response_text="", error_message="")
        .update(request_messages=[], response_text="", error_message="")
    )


def llm_calls_text_purge(*, before: datetime) -> int:
    """Empty the text of calls made before `before` (LLM_TEXT retention)."""
    return (
        LLMCall.objects.filter(created_at__lt=before)
        .exclude(request_messages=[], response_text="", error_message="")
        .update(request_messages=[], response_text="", error_message="")
    )


def llm_calls_purge(*, before: datetime) -> int:
    """Delete the call rows made before `before` (audit retention)."""
    deleted, _ = LLMCall.objects.filter(created_at__lt=before).delete()
    return deleted
