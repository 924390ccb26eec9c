"""A circuit breaker per alias, shared by every process through Redis (the Django cache).

Why our own, beside the Router's cooldowns: the Router cools down one *deployment* inside one
process. Deskpilot runs several processes (web workers, Celery workers); with per-process
state each of them would rediscover a dead provider by waiting out its timeouts. The breaker
works one level up, on the *alias*, and its state sits in Redis, so one process learning that
`draft-fast` is down spares all the others: they go straight to the fallback alias.

States, per alias:
- closed: calls go through; each failure of the alias (all its deployments failed, or its
  output was malformed) adds one to a counter, a success resets it;
- open: after LLM_CIRCUIT_FAILURE_THRESHOLD consecutive failures the alias is skipped for
  LLM_CIRCUIT_OPEN_SECONDS;
- half-open: when that time is over, exactly one caller (an atomic `cache.add`) gets a probe;
  its success closes the circuit, its failure opens it again for another period.

If Redis is unreachable the breaker fails open (calls go through): losing the optimisation
must not stop drafting.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

_PREFIX = "llm:circuit"


def _failures_key(alias: str) -> str:
    return f"{_PREFIX}:{alias}:failures"


def _open_until_key(alias: str) -> str:
    return f"{_PREFIX}:{alias}:open_until"


def _probe_key(alias: str) -> str:
    return f"{_PREFIX}:{alias}:probe"


@dataclass(frozen=True)
class CircuitState:
    alias: str
    state: str  # "closed", "open" or "half-open"
    failures: int
    open_until: float | None  # epoch seconds


def circuit_states(aliases: Sequence[str]) -> dict[str, CircuitState]:
    """The state of each alias, from one Redis round trip."""
    keys = [key for alias in aliases for key in (_failures_key(alias), _open_until_key(alias))]
    try:
        values = cache.get_many(keys)
    except Exception:  # the cache is an optimisation here; never let it stop a draft
        logger.warning("circuit breaker: cache unreachable, treating every alias as closed")
        values = {}
    now = time.time()
    result = {}
    for alias in aliases:
        failures = int(values.get(_failures_key(alias)) or 0)
        open_until = values.get(_open_until_key(alias))
        if open_until is None:
            state = "closed"
        elif now < float(open_until):
            state = "open"
        else:
            state = "half-open"
        result[alias] = CircuitState(alias, state, failures, open_until)
    return result


def circuit_allowed(aliases: Sequence[str]) -> list[CircuitState]:
    """The aliases a call may use now, in order: closed ones, and half-open ones it won.

    Winning a half-open alias reserves its single probe for this caller.
    """
    return [
        state
        for state in circuit_states(aliases).values()
        if state.state == "closed" or (state.state == "half-open" and _probe_claim(state.alias))
    ]


def _probe_claim(alias: str) -> bool:
    # The probe reservation expires on its own, so a crashed prober cannot wedge the circuit.
    bound = max(settings.LLM_REQUEST_TIMEOUT * (settings.LLM_NUM_RETRIES + 1), 1.0)
    try:
        return bool(cache.add(_probe_key(alias), 1, timeout=int(bound) + 1))
    except Exception:
        return True


def circuit_record_success(alias: str) -> None:
    """Close the alias's circuit. Callers skip it when the alias was closed with no failures."""
    try:
        cache.delete_many([_failures_key(alias), _open_until_key(alias), _probe_key(alias)])
    except Exception:
        logger.warning("circuit breaker: cache unreachable, success of %s not recorded", alias)


def circuit_record_failure(alias: str) -> None:
    """Count one failure; open (or re-open, after a failed probe) the circuit at the threshold."""
    key = _failures_key(alias)
    try:
        cache.add(key, 0, timeout=None)
        failures = cache.incr(key)
        if failures >= settings.LLM_CIRCUIT_FAILURE_THRESHOLD:
            open_until = time.time() + settings.LLM_CIRCUIT_OPEN_SECONDS
            cache.set(_open_until_key(alias), open_until, timeout=None)
            cache.delete(_probe_key(alias))
            logger.warning(
                "circuit breaker: %s open for %ss", alias, settings.LLM_CIRCUIT_OPEN_SECONDS
            )
    except Exception:
        logger.warning("circuit breaker: cache unreachable, failure of %s not recorded", alias)


def circuit_reset(aliases: Sequence[str]) -> None:
    """Close the circuits of `aliases` (an admin action, and test isolation)."""
    cache.delete_many(
        [key for a in aliases for key in (_failures_key(a), _open_until_key(a), _probe_key(a))]
    )
