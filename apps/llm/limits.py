"""A provider's limits per deployment, shared by every process and pod through Redis.

A deployment in LLM_DEPLOYMENTS may say how much its provider allows:

    {"model": "openai/gpt-4o-mini", "max_concurrency": 20, "tokens_per_minute": 200000}

- `max_concurrency`: model calls in flight at once on that deployment, over every worker
  process and thread (a pipeline worker runs dozens of threads; several run at scale).
- `tokens_per_minute`: prompt and completion tokens in any minute (a sliding-window counter
  from `limits`). A call reserves its prompt, at about four characters a token, plus the
  longest answer it may write, before it is made: the provider counts the same way.

A call over a limit waits for its turn (it is queued, not failed) for up to
LLM_LIMIT_WAIT_SECONDS, and the time it waited is measured. A provider that answered 429
with Retry-After pauses its alias for every caller until then (`alias_pause`), so the next
calls wait instead of hammering it (litellm's Router itself waits that long before its
retry), and the refused call waits too, then tries again, within the same bound. Limits
fail open: when Redis cannot be reached, the call goes ahead and an error is logged (as the
web's rate limits do).

The concurrency slots are a Redis sorted set written here: `limits` counts rates, not calls
in flight, and redis-py's Lock admits one holder. Each slot is a lease that ends on its own
(LEASE_SECONDS past the call's longest possible duration), so a worker killed mid-call
cannot keep its slot.
"""

from __future__ import annotations

import functools
import logging
import math
import random
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings

from apps.core import metrics
from apps.core.limiting import limits_storage
from apps.core.timelimits import soft_time_limit_check
from apps.llm.deployments import Deployment
from apps.llm.exceptions import ModelUnavailable

logger = logging.getLogger(__name__)


class NoTurn(ModelUnavailable):
    """A call waited LLM_LIMIT_WAIT_SECONDS for a turn under its deployment's limits."""


KEY_PREFIX = "deskpilot:llm-limit:"
CHARS_PER_TOKEN = 4
# A slot's lease beyond the call's own worst case (its timeout, retried).
LEASE_SECONDS = 30

# KEYS[1]: the deployment's slots; ARGV: limit, lease seconds, member. Redis's clock, so that
# machines whose clocks disagree still agree on when a lease ends.
_ACQUIRE = """
local now = redis.call('TIME')
local seconds = tonumber(now[1]) + tonumber(now[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', seconds)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], seconds + tonumber(ARGV[2]), ARGV[3])
  redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])) + 60)
  return 1
end
return 0
"""


@functools.cache
def _rate_limiter() -> Any:
    from limits.strategies import SlidingWindowCounterRateLimiter

    return SlidingWindowCounterRateLimiter(limits_storage(timeout=2))


@functools.cache
def _per_minute(amount: int) -> Any:
    from limits import RateLimitItemPerMinute

    return RateLimitItemPerMinute(amount)


def tokens_estimate(messages: list[dict], max_tokens: int | None) -> int:
    """What a call may cost in tokens before it is made: its prompt, at about four characters
    a token, and the answer it may write (`max_tokens`, LLM_LIMIT_ANSWER_TOKENS if unset)."""
    characters = sum(len(str(message.get("content") or "")) for message in messages)
    answer = max_tokens if max_tokens is not None else settings.LLM_LIMIT_ANSWER_TOKENS
    return math.ceil(characters / CHARS_PER_TOKEN) + answer


def limited(deployment: Deployment | None) -> bool:
    return deployment is not None and bool(
        deployment.max_concurrency or deployment.tokens_per_minute
    )


@contextmanager
def deployment_turn(
    alias: str,
    deployment_id: str,
    deployment: Deployment | None,
    *,
    tokens: int,
    lease_seconds: float,
) -> Iterator[float]:
    """Wait until no 429 pause holds `alias` and, when `deployment` has limits, it has a free
    slot and `tokens` fit in its minute; yield the seconds waited; free the slot on exit.
    Raises NoTurn after LLM_LIMIT_WAIT_SECONDS of waiting."""
    if deployment is not None and not limited(deployment):
        deployment = None
    started = time.monotonic()
    deadline = started + settings.LLM_LIMIT_WAIT_SECONDS
    member = uuid.uuid4().hex
    client = metrics.redis_client()
    slots = f"{KEY_PREFIX}{deployment_id}:slots"
    holding = False
    pause = 0.02
    try:
        while True:
            try:
                ready = _turn_try(client, alias, deployment, slots, member, tokens, lease_seconds)
            except Exception as error:  # Redis away: go ahead (see the module's docstring)
                logger.error("limits of %s not checked, calling anyway: %r", deployment_id, error)
                ready = True
            if ready:
                holding = deployment is not None and bool(deployment.max_concurrency)
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                waited = settings.LLM_LIMIT_WAIT_SECONDS
                raise NoTurn(
                    f"{deployment_id} had no free turn within {waited:g} s",
                    detail="provider limits (max_concurrency / tokens_per_minute / 429 pause)",
                )
            soft_time_limit_check()
            time.sleep(min(remaining, pause * (0.5 + random.random())))  # noqa: S311
            pause = min(pause * 1.5, 0.5)
        waited = time.monotonic() - started
        if deployment is not None or waited > 0.001:
            metrics.metrics_record(
                metrics.Batch().observe(metrics.LLM_LIMIT_WAIT, waited, deployment=deployment_id)
            )
        yield waited
    finally:
        if holding:
            try:
                client.zrem(slots, member)
            except Exception as error:  # the lease ends on its own
                logger.warning("slot of %s not freed: %r", deployment_id, error)


def _turn_try(
    client: Any,
    alias: str,
    deployment: Deployment | None,
    slots: str,
    member: str,
    tokens: int,
    lease_seconds: float,
) -> bool:
    if client.exists(f"{KEY_PREFIX}{alias}:paused"):
        return False
    if deployment is None:
        return True
    if deployment.max_concurrency and not client.eval(
        _ACQUIRE, 1, slots, deployment.max_concurrency, lease_seconds, member
    ):
        return False
    if deployment.tokens_per_minute:
        # A call larger than the whole minute's allowance waits for an empty minute.
        cost = min(tokens, deployment.tokens_per_minute)
        item = _per_minute(deployment.tokens_per_minute)
        if not _rate_limiter().hit(item, "llm-tpm", slots, cost=cost):
            if deployment.max_concurrency:
                client.zrem(slots, member)
            return False
    return True


def alias_pause(alias: str, seconds: float) -> None:
    """Hold every call to `alias` for `seconds` (its provider answered 429 with Retry-After),
    at most a minute."""
    if seconds <= 0:
        return
    try:
        metrics.redis_client().set(
            f"{KEY_PREFIX}{alias}:paused", "1", px=max(1, int(min(seconds, 60.0) * 1000))
        )
    except Exception as error:
        logger.warning("pause of %s not recorded: %r", alias, error)


def retry_after_seconds(error: BaseException) -> float:
    """How long a provider asked to be left alone: the Retry-After of its 429 (seconds, or an
    HTTP date), or what is left of the Router's cooldown of a deployment that answered one;
    0 for any other error."""
    if type(error).__name__ == "RouterRateLimitError":
        return max(0.0, float(getattr(error, "cooldown_time", 0.0) or 0.0))
    if getattr(error, "status_code", None) != 429:
        return 0.0
    # Where litellm keeps the provider's headers depends on the path the error took.
    candidates = (
        getattr(error, "litellm_response_headers", None),
        getattr(getattr(error, "response", None), "headers", None),
        getattr(error, "headers", None),
    )
    value = next(
        (
            str(found.get("retry-after"))
            for found in candidates
            if found and found.get("retry-after")
        ),
        "",
    ).strip()
    if not value:
        return 0.0
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return 0.0
