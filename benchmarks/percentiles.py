"""The one percentile every benchmark script reports (p50, p95): nearest rank, no
interpolation, so a reported p95 is a latency that was measured."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], share: float) -> float:
    """The value at `share` (0-1) of the sorted values; nan for none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]
