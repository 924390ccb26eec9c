"""The copilot's copies of a customer's words: drafts, the reply cache, live draft streams.

Called by apps/privacy (a customer's erasure, a retention period); see
apps/tickets/services/erasure.py for the tickets' own text.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from django.db import transaction
from django.db.models import Q

from apps.copilot.models import Decision, Draft, HandoffReason, ReplyCacheEntry
from apps.copilot.streaming import stream_forget
from apps.core.text import text_stripped

# Strings a draft's JSON keeps when its text is erased: the reasons and decisions metrics
# count, never anything a customer or model wrote.
_VOCABULARY = frozenset(HandoffReason.values) | frozenset(Decision.values)


@transaction.atomic
def drafts_text_erase(*, ticket_ids: Collection[int]) -> int:
    """Empty the drafts' reply, reason detail, and the text inside their validation, guard,
    context, retrieval and citation records; scores, flags and reasons stay."""
    erased = 0
    fields = ("validation", "guard", "context", "retrieved", "citations", "confidence_features")
    for draft in Draft.objects.filter(ticket_id__in=ticket_ids).only("pk", *fields):
        Draft.objects.filter(pk=draft.pk).update(
            body="",
            reason_detail="",
            **{name: text_stripped(getattr(draft, name), keep=_VOCABULARY) for name in fields},
        )
        erased += 1
    return erased


def reply_cache_forget(*, ticket_ids: Collection[int], texts: Collection[str]) -> int:
    """Delete the cached replies whose question came from these tickets or is one of these
    texts (entries stored before the source was recorded, or overwritten by another ticket
    asking the same)."""
    match = Q(source_ticket_id__in=list(ticket_ids))
    for text in texts:
        match |= Q(question__iexact=text.strip()[:2000])
    deleted, _ = ReplyCacheEntry.objects.filter(match).delete()
    return deleted


def draft_streams_forget(*, ticket_ids: Collection[int]) -> int:
    return stream_forget(ticket_ids=list(ticket_ids))


def reply_cache_purge(*, before: datetime) -> int:
    """Delete the cached replies last stored before `before` (however often served since)."""
    deleted, _ = ReplyCacheEntry.objects.filter(updated_at__lt=before).delete()
    return deleted
