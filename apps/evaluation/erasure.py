"""Evaluation's copies of a customer's words, for apps/privacy: gold-set candidates and
gold items taken from their tickets (or carrying one of their messages as the question),
and the runs' results for those items (the reply the pipeline wrote)."""

from __future__ import annotations

from collections.abc import Collection

from django.db import transaction
from django.db.models import Q

from apps.evaluation.goldsets import gold_key
from apps.evaluation.models import EvalResult, GoldCandidate, GoldItem


@transaction.atomic
def evaluation_text_erase(*, ticket_ids: Collection[int], texts: Collection[str]) -> dict[str, int]:
    candidates, _ = GoldCandidate.objects.filter(ticket_id__in=list(ticket_ids)).delete()
    keys = {gold_key(text) for text in texts if text.strip()}
    items = GoldItem.objects.filter(Q(source_ticket_id__in=list(ticket_ids)) | Q(key__in=keys))
    results, _ = EvalResult.objects.filter(item__in=items).delete()
    removed, _ = items.delete()
    return {"gold_candidates": candidates, "gold_items": removed, "eval_results": results}
