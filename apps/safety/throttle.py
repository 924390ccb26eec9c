"""Rate limits shared by every web process: moving-window counters in Redis (`limits`).

    limit_hit("widget_visitor_message", str(ticket_id))   # raises RateLimitedError when over

Each limit is named; its rate comes from `RATE_LIMITS` (settings, env `RATE_LIMITS` as
`name=12/minute,...`; `name=off` switches one off). The client IP for per-IP limits comes from
`client_ip(request)`, which believes `X-Forwarded-For` only from `TRUSTED_PROXIES`.

Limits fail open: when Redis cannot be reached, the request is served and an error is logged.
A support widget that refuses every customer because its counter store blinked is worse than a
minute without limits; the LLM spend caps (checked in PostgreSQL) still bound the cost. After
a failure the process skips its checks for a few seconds: a Redis that hangs rather than
refuses would otherwise cost every request the socket timeout, once per limit it checks.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from typing import Any

from django.conf import settings
from django.http import HttpRequest

from apps.core.backoff import Backoff
from apps.core.exceptions import DeskpilotError
from apps.core.limiting import limits_storage

logger = logging.getLogger(__name__)


class RateLimitedError(DeskpilotError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# What each limit counts, for its error message.
LIMITS = {
    "widget_visitor_message": "messages from this conversation",
    "widget_ip_message": "widget messages from this address",
    "widget_ip_conversation": "new conversations from this address",
    "api_key": "API requests with this key",
    "email_sender": "emails from this sender",
}


# After a failure, this process checks no limit for a few seconds (see the docstring).
backoff = Backoff(5.0)


@functools.cache
def _limiter() -> Any:
    from limits.strategies import MovingWindowRateLimiter

    # Short timeouts: a limit check must never hold a request for long when Redis is away.
    return MovingWindowRateLimiter(limits_storage(timeout=0.25))


@functools.cache
def _rate(rate: str) -> Any:
    from limits import parse

    return parse(rate)


def limit_hit(name: str, *keys: str) -> None:
    """Count one request against limit `name` for `keys`; RateLimitedError when over it."""
    rate = settings.RATE_LIMITS.get(name, "")
    if not rate or rate == "off":
        return
    item = _rate(rate)
    if backoff.holding():
        return
    try:
        limiter = _limiter()
        if limiter.hit(item, name, *keys):
            return
        reset_at = limiter.get_window_stats(item, name, *keys).reset_time
    except Exception as error:  # Redis away: serve, and say so (see the module's docstring)
        logger.error("rate limit %s not checked, serving anyway: %r", name, error)
        backoff.start()
        return
    retry_after = max(1, math.ceil(reset_at - time.time()))
    raise RateLimitedError(
        f"too many {LIMITS.get(name, 'requests')} (limit {rate}); try again in {retry_after} s",
        retry_after=retry_after,
    )


def limit_forget(name: str, *keys: str) -> bool:
    """Drop what limit `name` counted for `keys` (their Redis key names the sender, e.g. an
    email address). False when Redis could not be reached."""
    rate = settings.RATE_LIMITS.get(name, "")
    if not rate or rate == "off":
        return True
    try:
        _limiter().clear(_rate(rate), name, *keys)
    except Exception as error:
        logger.error("rate limit %s not cleared: %r", name, error)
        return False
    return True


def client_ip(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or behind a trusted proxy the first address in
    X-Forwarded-For, read from the right, that is not itself a trusted proxy. A header from
    anyone else is ignored, so a client cannot choose its own address.

    Written here rather than with ipware: ipware matches trusted proxies by string prefix, not
    by network, and by default takes the left-most address, which is the one a client writes.
    """
    from ipaddress import ip_address, ip_network

    remote = request.META.get("REMOTE_ADDR", "") or ""
    networks = [ip_network(n) for n in settings.TRUSTED_PROXIES]

    def trusted(address: str) -> bool:
        try:
            parsed = ip_address(address)
        except ValueError:
            return False
        return any(parsed in network for network in networks)

    if not networks or not trusted(remote):
        return remote
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
        if not trusted(hop):
            try:
                return str(ip_address(hop))
            except ValueError:
                return remote  # a malformed hop: the proxy's own address is all we know
    return remote
