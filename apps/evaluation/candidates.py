"""Gold-set candidates from agents' work: every draft an agent sent (as it was, or edited)
proposes its question, the article it cited and the reply actually sent as a gold item.

Collected by a beat task (`evaluation.candidates_collect`, every GOLD_CANDIDATES_INTERVAL
seconds) from feedback's DraftAction rows after the last one collected: idempotent (one
candidate per action), and it never slows the agent's send. An admin accepts candidates into
a gold set in bulk; accepting makes a gold item (re-accepting the same question updates it).
"""

from __future__ import annotations

from collections.abc import Collection

from django.core.cache import cache
from django.db import transaction
from django.db.models import Max

from apps.evaluation.goldsets import GoldRow
from apps.evaluation.models import CandidateStatus, GoldCandidate, GoldItem, GoldSet
from apps.feedback.models import DraftAction, DraftActionKind
from apps.tickets.services.erasure import ERASED

AGENT_ANSWERS = "agent-answers"
HIGH_WATER_KEY = "evaluation:candidates-collected-up-to"
BATCH = 500


def gold_candidates_collect() -> int:
    """Candidates for the sent drafts not collected yet; returns how many were made."""
    # The last action looked at (a skipped one too, so a run of erased tickets cannot stall
    # the collection); the candidates' own highest is the floor when the cache was lost.
    last = max(
        cache.get(HIGH_WATER_KEY) or 0,
        GoldCandidate.objects.aggregate(last=Max("draft_action_id"))["last"] or 0,
    )
    actions = (
        DraftAction.objects.filter(
            pk__gt=last, kind__in=[DraftActionKind.ACCEPTED, DraftActionKind.EDITED]
        )
        .select_related("draft__message")
        .order_by("pk")[:BATCH]
    )
    made = 0
    for action in actions:
        last = action.pk
        question = action.draft.message.body.strip()
        if not question or question == ERASED or not action.sent_body.strip():
            continue
        citations = action.draft.citations or []
        _, created = GoldCandidate.objects.get_or_create(
            draft_action_id=action.pk,
            defaults={
                "ticket_id": action.ticket_id,
                "question": question,
                "expected_intent": action.intent,
                "cited_article": citations[0].get("external_id", "") if citations else "",
                "reference_reply": action.sent_body,
                "edited": action.kind == DraftActionKind.EDITED,
            },
        )
        made += created
    cache.set(HIGH_WATER_KEY, last, timeout=None)
    return made


@transaction.atomic
def gold_candidates_accept(
    *, candidates: Collection[GoldCandidate], gold_set_name: str = AGENT_ANSWERS
) -> int:
    """Make gold items of these candidates in gold set `gold_set_name` (created when new);
    returns how many were accepted."""
    gold_set, _ = GoldSet.objects.get_or_create(
        name=gold_set_name, defaults={"origin": "replies agents sent"}
    )
    accepted = 0
    for candidate in candidates:
        if candidate.status == CandidateStatus.ACCEPTED:
            continue
        row = GoldRow(
            question=candidate.question,
            expected_intent=candidate.expected_intent,
            expected_articles=(candidate.cited_article,) if candidate.cited_article else (),
            needs_person=not candidate.cited_article,
            reference_reply=candidate.reference_reply,
            origin=f"ticket #{candidate.ticket_id}, reply sent by an agent",
        )
        item, _ = GoldItem.objects.update_or_create(
            gold_set=gold_set,
            key=row.key,
            defaults={**row.fields(), "source_ticket_id": candidate.ticket_id},
        )
        GoldCandidate.objects.filter(pk=candidate.pk).update(
            status=CandidateStatus.ACCEPTED, gold_item=item
        )
        accepted += 1
    return accepted


def gold_candidates_reject(*, candidates: Collection[GoldCandidate]) -> int:
    """Mark these candidates rejected (those not accepted already); returns how many."""
    return (
        GoldCandidate.objects.filter(pk__in=[c.pk for c in candidates])
        .exclude(status=CandidateStatus.ACCEPTED)
        .update(status=CandidateStatus.REJECTED)
    )
