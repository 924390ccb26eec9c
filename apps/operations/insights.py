"""The insights page's reading of the daily figures (apps.operations.rollups) over a period."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from apps.copilot.models import Decision, HandoffReason
from apps.evaluation.selectors import eval_runs_latest
from apps.operations.models import DailyFigures
from apps.operations.rollups import BUCKET_COUNT, bucket_middle

PERIODS = (7, 30, 90)
QUANTILES = (0.5, 0.95, 0.99)


def _share(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def quantile(histogram: list[int], share: float) -> float | None:
    """The value below which `share` of the histogram's observations fall (bucket middle)."""
    total = sum(histogram)
    if not total:
        return None
    running = 0
    for index, count in enumerate(histogram):
        running += count
        if running >= share * total:
            return round(bucket_middle(index), 1)
    return round(bucket_middle(len(histogram) - 1), 1)


def insights(*, days: int, today: date | None = None) -> dict:
    """Everything the page shows for the last `days` UTC days (today included)."""
    today = today or timezone.now().astimezone(UTC).date()
    first = today - timedelta(days=days - 1)
    rows = {row.day: row for row in DailyFigures.objects.filter(day__gte=first, day__lte=today)}
    channels = sorted({c for r in rows.values() for c in r.figures.get("messages_by_channel", {})})
    by_channel: dict[str, list[int]] = {channel: [] for channel in channels}
    series: dict[str, Any] = {
        "days": [], "channels": by_channel, "auto_send_rate": [], "precision": [], "cost": [],
    }  # fmt: skip
    totals: Counter = Counter()
    reasons: Counter = Counter()
    stages: dict[str, list[int]] = {}
    intents: dict[str, Counter] = {}
    reliability = [[0, 0, 0.0] for _ in range(10)]
    for offset in range(days):
        day = first + timedelta(days=offset)
        figures = rows[day].figures if day in rows else {}
        decisions = figures.get("decisions", {})
        series["days"].append(day.isoformat())
        for channel in channels:
            series["channels"][channel].append(
                figures.get("messages_by_channel", {}).get(channel, 0)
            )
        drafts = figures.get("drafts", 0)
        series["auto_send_rate"].append(_share(decisions.get(Decision.AUTO_SENT, 0), drafts))
        series["precision"].append(
            _share(figures.get("auto_sent_right", 0), figures.get("auto_sent_judged", 0))
        )
        series["cost"].append(round(figures.get("cost_usd", 0.0), 4))
        for key in ("drafts", "tickets_opened", "tickets_resolved", "cache_hits",
                    "model_calls", "auto_sent_right", "auto_sent_judged"):  # fmt: skip
            totals[key] += figures.get(key, 0)
        totals["auto_sent"] += decisions.get(Decision.AUTO_SENT, 0)
        totals["cost_usd"] += figures.get("cost_usd", 0.0)
        totals["messages"] += sum(figures.get("messages_by_channel", {}).values())
        reasons.update(figures.get("handoffs_by_reason", {}))
        for stage, histogram in figures.get("stages", {}).items():
            merged = stages.setdefault(stage, [0] * BUCKET_COUNT)
            for index, count in enumerate(histogram):
                merged[index] += count
        for name, counts in figures.get("intents", {}).items():
            intents.setdefault(name, Counter()).update(counts)
        for index, (judged, right, confidence) in enumerate(figures.get("reliability", [])):
            reliability[index][0] += judged
            reliability[index][1] += right
            reliability[index][2] += confidence
    labels = dict(HandoffReason.choices)
    return {
        "days": days,
        "periods": PERIODS,
        "refreshed_at": max((r.refreshed_at for r in rows.values()), default=None),
        "series": series,
        "daily_budget": settings.LLM_BUDGET_DAILY_USD,
        "totals": {
            **totals,
            "cost_usd": round(totals["cost_usd"], 4),
            "auto_send_rate": _share(totals["auto_sent"], totals["drafts"]),
            "precision": _share(totals["auto_sent_right"], totals["auto_sent_judged"]),
            "cost_per_resolved": (
                round(totals["cost_usd"] / totals["tickets_resolved"], 4)
                if totals["tickets_resolved"]
                else None
            ),
        },
        "reasons": [
            {
                "reason": labels.get(reason, reason or "(none)"),
                "count": count,
                "share": _share(count, totals["drafts"]),
            }
            for reason, count in reasons.most_common()
        ],
        "stages": [
            {
                "stage": stage,
                "count": sum(histogram),
                **{f"p{round(q * 100)}": quantile(histogram, q) for q in QUANTILES},
            }
            for stage, histogram in sorted(stages.items(), key=lambda kv: kv[0] != "total")
        ],
        "intents": [
            {
                "intent": name,
                "drafts": counts["drafts"],
                "auto_sent": _share(counts[Decision.AUTO_SENT], counts["drafts"]),
                "handed_off": _share(counts[Decision.HANDED_OFF], counts["drafts"]),
                "judged": counts["right"] + counts["wrong"],
                "right": _share(counts["right"], counts["right"] + counts["wrong"]),
            }
            for name, counts in sorted(intents.items(), key=lambda kv: -kv[1]["drafts"])[:15]
        ],
        "reliability": [
            {
                "bin": f"{index / 10:.1f}-{(index + 1) / 10:.1f}",
                "judged": judged,
                "predicted": round(confidence / judged, 3) if judged else None,
                "observed": _share(right, judged),
            }
            for index, (judged, right, confidence) in enumerate(reliability)
        ],
        "eval_runs": eval_runs_latest(limit=8),
    }
