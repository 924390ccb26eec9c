"""A process-local pause after a failure: for a few seconds, callers skip a step whose
dependency just failed (a Redis that hangs costs each caller its socket timeout otherwise).
Used by the web's task publishing (apps/core/broker.py) and rate limits
(apps/safety/throttle.py). A timestamp, not a circuit-breaker library: those count failures
up to a threshold, and here the first failure is the signal."""

from __future__ import annotations

import threading
import time


class Backoff:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._until = 0.0
        self._lock = threading.Lock()

    def holding(self) -> bool:
        """Whether a failure less than `seconds` ago says to skip the step."""
        return time.monotonic() < self._until

    def start(self) -> None:
        with self._lock:
            self._until = max(self._until, time.monotonic() + self.seconds)

    def reset(self) -> None:
        with self._lock:
            self._until = 0.0
