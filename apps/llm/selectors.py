"""Reads of the LLM call log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.utils import timezone

from apps.llm.models import LLMCall


@dataclass(frozen=True)
class Spend:
    today_usd: Decimal  # since 00:00 UTC
    month_usd: Decimal  # since the 1st of the month, 00:00 UTC
    ticket_usd: Decimal  # over the ticket's whole life (0 without a ticket)
    customer_today_usd: Decimal = Decimal("0")  # the customer's, since 00:00 UTC


def llm_spend(
    *, ticket_id: int | None = None, customer_id: int | None = None, now: datetime | None = None
) -> Spend:
    """Spend in USD from LLMCall rows, in one query (created_at, ticket_id and customer_id
    are indexed). `customer_today_usd`: the customer's spend today, over all their tickets."""
    now = now or timezone.now()
    day_start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    month_start = day_start.replace(day=1)
    scope = Q(created_at__gte=month_start)
    if ticket_id is not None:
        scope |= Q(ticket_id=ticket_id)
    sums = {
        "today": Sum("cost_usd", filter=Q(created_at__gte=day_start)),
        "month": Sum("cost_usd", filter=Q(created_at__gte=month_start)),
    }
    if ticket_id is not None:
        sums["ticket"] = Sum("cost_usd", filter=Q(ticket_id=ticket_id))
    if customer_id is not None:
        sums["customer"] = Sum(
            "cost_usd", filter=Q(customer_id=customer_id, created_at__gte=day_start)
        )
    totals = LLMCall.objects.filter(scope).aggregate(**sums)
    zero = Decimal("0")
    return Spend(
        today_usd=totals["today"] or zero,
        month_usd=totals["month"] or zero,
        ticket_usd=totals.get("ticket") or zero,
        customer_today_usd=totals.get("customer") or zero,
    )


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
