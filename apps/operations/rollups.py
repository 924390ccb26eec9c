"""The insights page's daily figures: one row per UTC day, computed from that day's rows by
beat (today and yesterday every few minutes; the last week hourly, as feedback on older
drafts arrives), so the page reads a month of rows whatever the volume.

A day's figures: customer messages by channel, tickets opened and resolved, drafts by
decision and handoff reason, each stage's latency histogram (log-spaced buckets, so the page
reads p50/p95/p99 over any span within about 12%), model cost and calls, per intent its
drafts and outcomes, and the judged drafts (agents' and customers' verdicts, as in
apps.evaluation.recalibration) by confidence bin: the calibration's reliability curve.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta

from django.utils import timezone

from apps.copilot.models import Decision
from apps.copilot.selectors import drafts_written_between
from apps.evaluation.recalibration import live_judgements
from apps.llm.selectors import llm_cost_between
from apps.operations.models import DailyFigures
from apps.tickets.selectors import customer_messages_by_channel, tickets_opened_and_resolved

# Stage latency buckets: 1 ms * 1.25^i up to about a minute; bucket i holds (edge i-1, edge i].
BUCKET_RATIO = 1.25
BUCKET_COUNT = 50
RELIABILITY_BINS = 10


def bucket_of(milliseconds: float) -> int:
    if milliseconds <= 1.0:
        return 0
    return min(BUCKET_COUNT - 1, math.ceil(math.log(milliseconds) / math.log(BUCKET_RATIO)))


def bucket_middle(index: int) -> float:
    """A bucket's geometric middle in milliseconds (its only value we know)."""
    if index == 0:
        return 1.0
    return BUCKET_RATIO ** (index - 0.5)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def day_figures(day: date) -> dict:
    start, end = day_bounds(day)
    drafts = drafts_written_between(start=start, end=end)
    opened, resolved = tickets_opened_and_resolved(start=start, end=end)
    cost, calls = llm_cost_between(start=start, end=end)
    stages: dict[str, list[int]] = {}
    intents: dict[str, Counter] = {}
    for draft in drafts:
        for stage, milliseconds in (draft["stage_timings"] or {}).items():
            if isinstance(milliseconds, int | float):
                histogram = stages.setdefault(stage, [0] * BUCKET_COUNT)
                histogram[bucket_of(milliseconds)] += 1
        if draft["intent"]:
            outcome = intents.setdefault(draft["intent"], Counter())
            outcome["drafts"] += 1
            outcome[draft["decision"]] += 1
    by_id = {draft["id"]: draft for draft in drafts}
    reliability = [[0, 0, 0.0] for _ in range(RELIABILITY_BINS)]  # judged, right, confidence
    judged: Counter[str] = Counter()
    for draft_id, decision, _, right in live_judgements(since=start, until=end):
        if draft_id not in by_id:
            continue
        draft = by_id[draft_id]
        if decision == Decision.AUTO_SENT:
            judged["auto_sent_judged"] += 1
            judged["auto_sent_right"] += int(right)
        if draft["intent"]:
            intents.setdefault(draft["intent"], Counter())["right" if right else "wrong"] += 1
        if draft["confidence"] is not None:
            index = min(RELIABILITY_BINS - 1, int(draft["confidence"] * RELIABILITY_BINS))
            reliability[index][0] += 1
            reliability[index][1] += int(right)
            reliability[index][2] += float(draft["confidence"])
    return {
        "messages_by_channel": customer_messages_by_channel(start=start, end=end),
        "tickets_opened": opened,
        "tickets_resolved": resolved,
        "drafts": len(drafts),
        "decisions": dict(Counter(draft["decision"] for draft in drafts)),
        "handoffs_by_reason": dict(
            Counter(d["reason"] for d in drafts if d["decision"] != Decision.AUTO_SENT)
        ),
        "cache_hits": sum(1 for draft in drafts if draft["cache_hit"]),
        "stages": stages,
        "cost_usd": float(cost),
        "model_calls": calls,
        "intents": {name: dict(counts) for name, counts in intents.items()},
        "reliability": reliability,
        **judged,
    }


def figures_refresh(*, days: int = 2, today: date | None = None) -> int:
    """Recompute the last `days` days' figures (today included); returns how many."""
    today = today or timezone.now().astimezone(UTC).date()
    for offset in range(days):
        day = today - timedelta(days=offset)
        DailyFigures.objects.update_or_create(
            day=day, defaults={"figures": day_figures(day), "refreshed_at": timezone.now()}
        )
    return days
