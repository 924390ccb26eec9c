"""Evaluation's copies of a customer's words, for apps/privacy: gold-set candidates and
gold items taken from their tickets (or carrying one of their messages as the question),
and the runs' results for those items (the reply the pipeline wrote)."""

from __future__ import annotations

from collections.abc import Collection

from django.db import transaction
from django.db.models import Q

from apps.evaluation.goldsets import gold_key
from apps.evaluation.models import EvalResult, GoldCandidate, GoldItem, KnowledgeGap


@transaction.atomic
def evaluation_text_erase(*, ticket_ids: Collection[int], texts: Collection[str]) -> dict[str, int]:
    candidates, _ = GoldCandidate.objects.filter(ticket_id__in=list(ticket_ids)).delete()
    keys = {gold_key(text) for text in texts if text.strip()}
    items = GoldItem.objects.filter(Q(source_ticket_id__in=list(ticket_ids)) | Q(key__in=keys))
    results, _ = EvalResult.objects.filter(item__in=items).delete()
    removed, _ = items.delete()
    return {
        "gold_candidates": candidates,
        "gold_items": removed,
        "eval_results": results,
        "knowledge_gap_questions": _gaps_forget(set(ticket_ids)),
    }


def _gaps_forget(ticket_ids: set[int]) -> int:
    """Take the tickets' questions and answers out of the knowledge gaps (a gap left with
    none is deleted; the draft article an admin made from one is the knowledge base's)."""
    forgotten = 0
    for gap in KnowledgeGap.objects.select_for_update():
        mine = {q["message_id"] for q in gap.questions if q["ticket_id"] in ticket_ids}
        if not mine:
            continue
        forgotten += len(mine)
        questions = [q for q in gap.questions if q["message_id"] not in mine]
        if not questions:
            gap.delete()
            continue
        answers = [a for a in gap.answers if a["message_id"] not in mine]
        central = gap.proposed_body
        if gap.questions[0]["message_id"] in mine:  # the proposal was that ticket's answer
            central = f"# {questions[0]['text'][:200]}\n\n{answers[0]['text'] if answers else ''}"
        KnowledgeGap.objects.filter(pk=gap.pk).update(
            questions=questions,
            answers=answers,
            proposed_body=central,
            message_ids=[m for m in gap.message_ids if m not in mine],
            tickets=len({q["ticket_id"] for q in questions}),
            title=questions[0]["text"][:300],
        )
    return forgotten
