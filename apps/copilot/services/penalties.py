"""Customers' complaints lowering an intent→article link until an admin reviewed them
(see LinkPenalty). Called by apps/feedback when a thumbs-down flag opens, is withdrawn or is
reviewed."""

from __future__ import annotations

from apps.copilot.models import Draft, LinkPenalty
from apps.knowledge.models import Article


def link_penalty_add(*, draft: Draft, ref: str) -> LinkPenalty | None:
    """Lower the link between the draft's intent and its first cited article; None when the
    draft has no intent or no (existing) cited article. Idempotent per `ref`."""
    article_id = (draft.citations or [{}])[0].get("article_id")
    if not draft.intent or not Article.objects.filter(pk=article_id).exists():
        return None  # no intent, no citation, or the article was deleted since
    penalty, _ = LinkPenalty.objects.get_or_create(
        ref=ref, defaults={"intent_name": draft.intent, "article_id": article_id}
    )
    return penalty


def link_penalty_clear(*, refs: list[str]) -> int:
    deleted, _ = LinkPenalty.objects.filter(ref__in=refs).delete()
    return deleted
