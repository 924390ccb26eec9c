"""The /metrics exposition: the recorded metrics (apps.core.metrics) and gauges read at
scrape time from the database and Redis (budget, circuits, queues, eval scores).

Gauges read at scrape time describe the whole deployment, so every web replica reports the
same values: scrape one replica (or aggregate with max()). Each source is read on its own:
one that fails is left out of the answer and logged, and the others are still reported.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from django.conf import settings
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from apps.copilot.selectors import policy_effective
from apps.core import metrics
from apps.core.workers import celery_queue_lengths, workers_warm_count
from apps.evaluation.selectors import eval_scores_latest
from apps.llm.circuit import circuit_states
from apps.llm.selectors import llm_spend

logger = logging.getLogger(__name__)

CIRCUIT_STATES = ("closed", "open", "half-open")


def _budget() -> Iterator[Metric]:
    spend = llm_spend()
    spent = GaugeMetricFamily(
        "deskpilot_llm_budget_spent_usd", "Model spend so far this UTC day and month.",
        labels=["period"],
    )  # fmt: skip
    limit = GaugeMetricFamily(
        "deskpilot_llm_budget_limit_usd", "The budget of the period (0: no limit).",
        labels=["period"],
    )  # fmt: skip
    spent.add_metric(["day"], float(spend.today_usd))
    spent.add_metric(["month"], float(spend.month_usd))
    limit.add_metric(["day"], settings.LLM_BUDGET_DAILY_USD)
    limit.add_metric(["month"], settings.LLM_BUDGET_MONTHLY_USD)
    yield from (spent, limit)


def _circuits() -> Iterator[Metric]:
    gauge = GaugeMetricFamily(
        "deskpilot_llm_circuit_state",
        "1 for each model alias's current circuit-breaker state.",
        labels=["alias", "state"],
    )
    for alias, current in sorted(circuit_states(list(settings.LLM_DEPLOYMENTS)).items()):
        for state in CIRCUIT_STATES:
            gauge.add_metric([alias, state], 1.0 if current.state == state else 0.0)
    yield gauge


def _queues() -> Iterator[Metric]:
    gauge = GaugeMetricFamily(
        "deskpilot_celery_queue_length", "Tasks waiting in each Celery queue.", labels=["queue"]
    )
    for queue, length in celery_queue_lengths().items():
        gauge.add_metric([queue], float(length))
    warm = GaugeMetricFamily(
        "deskpilot_workers_warm", "Pipeline worker processes loaded and ready."
    )
    warm.add_metric([], float(workers_warm_count()))
    yield from (gauge, warm)


def _evaluation() -> Iterator[Metric]:
    gauge = GaugeMetricFamily(
        "deskpilot_eval_score",
        "Scores of the latest succeeded eval run of the configuration in force, per gold set.",
        labels=["gold_set", "metric"],
    )
    for gold_set, scores in sorted(eval_scores_latest().items()):
        for name, value in sorted(scores.items()):
            gauge.add_metric([gold_set, name], value)
    yield gauge


def _policy() -> Iterator[Metric]:
    policy = policy_effective()
    threshold = GaugeMetricFamily(
        "deskpilot_auto_send_threshold", "The confidence above which a draft is sent."
    )
    threshold.add_metric([], float(policy.auto_send_threshold))
    paused = GaugeMetricFamily("deskpilot_auto_send_paused", "1 while auto-send is paused.")
    paused.add_metric([], 1.0 if policy.auto_send_paused else 0.0)
    yield from (threshold, paused)


SOURCES: dict[str, Callable[[], Iterator[Metric]]] = {
    "recorded": lambda: iter(metrics.metrics_families()),
    "budget": _budget,
    "circuits": _circuits,
    "queues": _queues,
    "evaluation": _evaluation,
    "policy": _policy,
}


class _Snapshot:
    """A collector over families already read (prometheus_client asks a registry's
    collectors at generate time)."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


def exposition() -> bytes:
    """The Prometheus text format of every source that answered, and
    deskpilot_metrics_source_up (0 for a source that failed)."""
    metrics.metrics_buffer_flush()
    families: list[Metric] = []
    up = GaugeMetricFamily(
        "deskpilot_metrics_source_up", "1 when a source of these metrics answered.",
        labels=["source"],
    )  # fmt: skip
    for name, source in SOURCES.items():
        try:
            families.extend(source())
        except Exception:
            logger.exception("metrics source %s failed", name)
            up.add_metric([name], 0.0)
        else:
            up.add_metric([name], 1.0)
    families.append(up)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(families))  # type: ignore[arg-type]
    return generate_latest(registry)
