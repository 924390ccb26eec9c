"""A run's figures from its per-item results (the scorers)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from decimal import Decimal

import numpy as np

from apps.copilot.models import Decision
from apps.evaluation.models import EvalResult

PERCENTILES = (50, 95, 99)


def _share(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def run_metrics(results: Sequence[EvalResult]) -> dict:
    """Intent accuracy; right article first and in the top 5 (and MRR) over items with an
    expected article; auto-send share and precision; answerable items auto-sent right;
    decisions and handoffs by reason; latency percentiles per stage; tokens and cost."""
    scored = [r for r in results if not r.error]
    with_intent = [r for r in scored if r.intent_correct is not None]
    with_article = [r for r in scored if r.item is not None and r.item.expected_articles]
    answerable = [r for r in scored if r.item is not None and not r.item.needs_person]
    auto = [r for r in scored if r.decision == Decision.AUTO_SENT]
    stages: dict[str, list[float]] = {}
    for result in scored:
        for stage, ms in result.stage_timings.items():
            if isinstance(ms, int | float):
                stages.setdefault(stage, []).append(float(ms))
    cost = sum((r.cost_usd for r in scored), Decimal(0))
    judged = [r.judgement for r in scored if "faithfulness" in r.judgement]
    return {
        # The judge's means, over the items it graded (a real model's replies only).
        "faithfulness": _mean([j["faithfulness"] for j in judged]),
        "relevance": _mean([j["relevance"] for j in judged]),
        "judged_items": len(judged),
        "items": len(results),
        "errors": len(results) - len(scored),
        "intent_accuracy": _share(
            sum(bool(r.intent_correct) for r in with_intent), len(with_intent)
        ),
        "intent_items": len(with_intent),
        "article_hit1": _share(sum(r.article_rank == 1 for r in with_article), len(with_article)),
        "article_hit5": _share(
            sum(r.article_rank is not None and r.article_rank <= 5 for r in with_article),
            len(with_article),
        ),
        "article_mrr": round(
            sum(1 / r.article_rank for r in with_article if r.article_rank) / len(with_article), 4
        )
        if with_article
        else None,
        "article_items": len(with_article),
        "auto_send_share": _share(len(auto), len(scored)),
        "auto_send_precision": _share(sum(r.correct for r in auto), len(auto)),
        "auto_sent": len(auto),
        "answerable_auto_sent_right": _share(
            sum(r.decision == Decision.AUTO_SENT and r.correct for r in answerable), len(answerable)
        ),
        "decision_right": _share(sum(r.correct for r in scored), len(scored)),
        "decisions": dict(Counter(r.decision for r in scored)),
        "handoffs_by_reason": dict(Counter(r.reason for r in scored if r.reason)),
        "latency_ms": {
            stage: {f"p{p}": round(float(np.percentile(values, p)), 2) for p in PERCENTILES}
            for stage, values in sorted(stages.items())
        },
        "input_tokens_per_item": round(sum(r.input_tokens for r in scored) / len(scored), 1)
        if scored
        else 0,
        "output_tokens_per_item": round(sum(r.output_tokens for r in scored) / len(scored), 1)
        if scored
        else 0,
        "cost_usd": str(cost),
        "cost_usd_per_item": str(round(cost / len(scored), 8)) if scored else "0",
    }
