"""Per-API-key request limits, in the shared Redis counters of apps.safety.throttle."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from apps.accounts.models import ApiKey
from apps.safety.throttle import limit_hit


class ApiKeyThrottle(BaseThrottle):
    """Counts requests made with an API key; RateLimitedError (429) when over its limit.
    Requests without a key (the widget's, refused ones) are limited elsewhere or not at all."""

    def allow_request(self, request: Request, view: Any) -> bool:
        if isinstance(request.auth, ApiKey):
            limit_hit("api_key", str(request.auth.pk))
        return True
