"""Reads of the LLM call log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from django.db.models import Q, Sum
from django.utils import timezone

from apps.llm.models import LLMCall


@dataclass(frozen=True)
class Spend:
    today_usd: Decimal  # since 00:00 UTC
    month_usd: Decimal  # since the 1st of the month, 00:00 UTC
    ticket_usd: Decimal  # over the ticket's whole life (0 without a ticket)


def llm_spend(*, ticket_id: int | None = None, now: datetime | None = None) -> Spend:
    """Spend in USD from LLMCall rows, in one query (created_at and ticket_id are indexed)."""
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
    totals = LLMCall.objects.filter(scope).aggregate(**sums)
    zero = Decimal("0")
    return Spend(
        today_usd=totals["today"] or zero,
        month_usd=totals["month"] or zero,
        ticket_usd=totals.get("ticket") or zero,
    )


def llm_calls_for_ticket(*, ticket_id: int) -> list[LLMCall]:
    """Every call made for a ticket, oldest first (for the draft's explanation view)."""
    return list(LLMCall.objects.filter(ticket_id=ticket_id).order_by("created_at", "id"))
