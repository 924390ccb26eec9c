"""The `limits` library's storage on Deskpilot's Redis, shared by the rate limits of web
requests (apps/safety/throttle.py) and the model providers' limits (apps/llm/limits.py)."""

from __future__ import annotations

from typing import Any

from django.conf import settings


def limits_storage(*, timeout: float) -> Any:
    """A `limits` storage on REDIS_URL whose commands fail after `timeout` seconds."""
    from limits.storage import storage_from_string

    url = settings.REDIS_URL
    if url.startswith("unix://"):  # redis-py spells it unix://, `limits` redis+unix://
        url = "redis+unix://" + url.removeprefix("unix://")
    return storage_from_string(url, socket_timeout=timeout, socket_connect_timeout=timeout)
