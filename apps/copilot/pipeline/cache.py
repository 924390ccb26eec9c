"""Stage 5, cache: a reply the model already wrote for the same question, under the same
knowledge base and prompt (exact key), or for a question that means the same (semantic:
cosine of the question embeddings, same versions and intent). Only a reply written by a
model the routed alias may still be served by counts: after a switch from the offline
drafter to a provider's model (or to another model), the old replies are not served.

Nothing personal is stored: a question or reply in which `apps.safety.pii` finds personal data
(a card number, a name, an address) is not cached, so neither the table nor a later customer
ever sees it.

Only a conversation's first message uses the cache: a follow-up's reply depends on what came
before it, so it is neither served from nor stored in the cache.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from django.conf import settings
from pgvector.django import CosineDistance

from apps.copilot.models import PromptTemplate, ReplyCacheEntry
from apps.safety.pii import pii_find

_SPACES = re.compile(r"\s+")
_PUNCTUATION = re.compile(r"[^\w\s]", re.UNICODE)


@dataclass(frozen=True)
class CachedReply:
    reply: str
    citations: list[dict]  # the passages it was written from, as drafts store them
    model: str
    kind: str  # "exact" or "semantic"


def question_normalise(text: str) -> str:
    return _SPACES.sub(" ", _PUNCTUATION.sub(" ", text.lower())).strip()


# What a store under an existing key replaces (its hit count and creation time stay).
_STORED_FIELDS = (
    "question",
    "question_embedding",
    "intent",
    "knowledge_version",
    "prompt",
    "reply",
    "source_ticket_id",
)


def cache_key(*, question: str, kb_version: str, prompt_id: int) -> str:
    raw = f"{question_normalise(question)}\x1f{kb_version}\x1f{prompt_id}"
    return hashlib.sha256(raw.encode()).hexdigest()


def cache_lookup(
    *,
    question: str,
    question_vector: list[float],
    kb_version: str,
    prompt: PromptTemplate,
    intent: str,
    models: list[str],
) -> CachedReply | None:
    """The cached reply for the question written by one of `models`, counting the hit; None
    on a miss."""
    entry = ReplyCacheEntry.objects.filter(
        key=cache_key(question=question, kb_version=kb_version, prompt_id=prompt.id),
        reply__model__in=models,
    ).first()
    kind = "exact"
    if entry is None and intent:
        nearest = (
            ReplyCacheEntry.objects.filter(
                knowledge_version=kb_version,
                prompt=prompt,
                intent=intent,
                reply__model__in=models,
            )
            .annotate(distance=CosineDistance("question_embedding", question_vector))
            .order_by("distance")
            .first()
        )
        if (
            nearest is not None
            and 1 - nearest.distance >= settings.COPILOT_SEMANTIC_CACHE_SIMILARITY
        ):
            entry, kind = nearest, "semantic"
    if entry is None:
        return None
    ReplyCacheEntry.objects.filter(pk=entry.pk).update(hits=entry.hits + 1)
    return CachedReply(
        reply=entry.reply["reply"],
        citations=entry.reply["citations"],
        model=entry.reply["model"],
        kind=kind,
    )


def cache_store(
    *,
    question: str,
    vector: list[float],
    intent: str,
    kb_version: str,
    prompt: PromptTemplate,
    reply: str,
    citations: list[dict],
    model: str,
    ticket_id: int | None = None,
    reply_read: bool = True,
) -> bool:
    """Store the reply for the question; False (nothing stored) when either carries personal
    data. `ticket_id` is where the question came from, so erasing that customer finds it.
    `reply_read=False`: the reply was written by a model that was shown no personal data
    (redaction found none), so it is not read for any (spaCy's reading is the costly part)."""
    if pii_find(question) or (reply_read and pii_find(reply)):
        return False
    # One INSERT ... ON CONFLICT (key) DO UPDATE: update_or_create took six statements (two
    # savepoints, a locking read, the write) on every drafted reply.
    ReplyCacheEntry.objects.bulk_create(
        [
            ReplyCacheEntry(
                key=cache_key(question=question, kb_version=kb_version, prompt_id=prompt.id),
                question=question[:2000],
                question_embedding=vector,
                intent=intent,
                knowledge_version=kb_version,
                prompt=prompt,
                reply={"reply": reply, "citations": citations, "model": model},
                source_ticket_id=ticket_id,
            )
        ],
        update_conflicts=True,
        unique_fields=["key"],
        update_fields=[*_STORED_FIELDS, "updated_at"],
    )
    return True
