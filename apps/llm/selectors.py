"""Reads of the LLM call log."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.utils import timezone

from apps.llm.models import LLMCall

logger = logging.getLogger(__name__)
SPEND_KEY_PREFIX = "deskpilot:llm:spend:"


@dataclass(frozen=True)
class Spend:
    today_usd: Decimal  # since 00:00 UTC
    month_usd: Decimal  # since the 1st of the month, 00:00 UTC
    ticket_usd: Decimal  # over the ticket's whole life (0 without a ticket)
    customer_today_usd: Decimal = Decimal("0")  # the customer's, since 00:00 UTC


def llm_spend(
    *, ticket_id: int | None = None, customer_id: int | None = None, now: datetime | None = None
) -> Spend:
    """Spend in USD from LLMCall rows. The day's and the month's totals are kept in Redis for
    `LLM_SPEND_CACHE_SECONDS` and raised by each call logged meanwhile (`_spend_cache_add`):
    summed from the table on every call, they cost a scan of the month's calls per call,
    growing with volume (docs/benchmarks.md). Without Redis, or with the cache off (0),
    they are summed from the table. The ticket's and the customer's day come from the table
    (indexed by ticket and customer). `customer_today_usd`: over all their tickets."""
    now = now or timezone.now()
    day_start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    month_start = day_start.replace(day=1)
    today, month = _period_spend(day_start, month_start)
    sums = {}
    scope = Q(pk__in=[])
    if ticket_id is not None:
        sums["ticket"] = Sum("cost_usd", filter=Q(ticket_id=ticket_id))
        scope |= Q(ticket_id=ticket_id)
    if customer_id is not None:
        sums["customer"] = Sum(
            "cost_usd", filter=Q(customer_id=customer_id, created_at__gte=day_start)
        )
        scope |= Q(customer_id=customer_id, created_at__gte=day_start)
    totals = LLMCall.objects.filter(scope).aggregate(**sums) if sums else {}
    zero = Decimal("0")
    return Spend(
        today_usd=today,
        month_usd=month,
        ticket_usd=totals.get("ticket") or zero,
        customer_today_usd=totals.get("customer") or zero,
    )


def spend_key(at: datetime) -> str:
    """The Redis key of the totals for the UTC day of `at`."""
    return f"{SPEND_KEY_PREFIX}{at.astimezone(UTC):%Y-%m-%d}"


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def _period_spend(day_start: datetime, month_start: datetime) -> tuple[Decimal, Decimal]:
    """(today's, this month's) spend: from Redis when it has them, else from the table (and
    kept there for the next calls)."""
    seconds = settings.LLM_SPEND_CACHE_SECONDS
    key = spend_key(day_start)
    client = None
    if seconds:
        from apps.core.metrics import redis_client

        try:
            client = redis_client()
            kept = [_text(value) for value in client.hmget(key, ["today", "month"])]
            if kept[0] is not None and kept[1] is not None:
                return Decimal(kept[0]), Decimal(kept[1])
        except Exception as error:  # redis-py raises several types; the table still answers
            logger.warning("LLM spend not read from Redis: %r", error)
            client = None
    totals = LLMCall.objects.filter(created_at__gte=month_start).aggregate(
        today=Sum("cost_usd", filter=Q(created_at__gte=day_start)), month=Sum("cost_usd")
    )
    today, month = totals["today"] or Decimal("0"), totals["month"] or Decimal("0")
    if client is not None:
        try:
            with client.pipeline(transaction=True) as pipe:
                pipe.hset(key, mapping={"today": str(today), "month": str(month)})
                pipe.expire(key, seconds)
                pipe.execute()
        except Exception as error:
            logger.warning("LLM spend not kept in Redis: %r", error)
    return today, month


def llm_calls_for_ticket(*, ticket_id: int) -> list[LLMCall]:
    """Every call made for a ticket, oldest first (for the draft's explanation view)."""
    return list(LLMCall.objects.filter(ticket_id=ticket_id).order_by("created_at", "id"))


def llm_call_outcomes(*, since: datetime) -> tuple[int, int]:
    """(failed, total) model calls since `since` (cache hits are not calls)."""
    counts = LLMCall.objects.filter(created_at__gte=since, cache_hit=False).aggregate(
        failed=Count("id", filter=Q(status=LLMCall.Status.FAILED)), total=Count("id")
    )
    return counts["failed"], counts["total"]


def llm_cost_between(*, start: datetime, end: datetime) -> tuple[Decimal, int]:
    """(cost in USD, model calls) in [start, end); cache hits cost nothing and are not calls."""
    totals = LLMCall.objects.filter(created_at__gte=start, created_at__lt=end).aggregate(
        cost=Sum("cost_usd"), calls=Count("id", filter=Q(cache_hit=False))
    )
    return totals["cost"] or Decimal("0"), totals["calls"]
