"""Intent-aware knowledge search: what agents (the inbox's knowledge panel) and integrations
(`GET /api/v1/knowledge/search`) search with.

The query is triaged like a customer message; the hybrid search over-fetches, and the
articles linked to the likely intents (each intent's probability times its link weight, the
links learned from the intents' own examples or set by an admin) are lifted, as the
pipeline's retrieval does, by `KNOWLEDGE_SEARCH_INTENT_BOOST` over the fused score. A linked
article the search did not fetch at all is added with its best passage for the query.
Without an active classifier, or with `intents=False`, it is the plain search; the reading
(intent, probability, language, the articles lifted) is returned with the hits.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from django.conf import settings

from apps.copilot.links import intent_links_ensure
from apps.copilot.pipeline.retrieval import QUERY_CHARS, article_probabilities
from apps.copilot.selectors import intents_article_weights
from apps.knowledge.selectors import (
    MAX_RESULTS,
    SearchHit,
    article_best_chunks,
    chunk_search,
    knowledge_version,
    query_validate,
)
from apps.llm import embeddings
from apps.triage.classification import message_classify
from apps.triage.signals import detect_language


@dataclass(frozen=True)
class SearchReading:
    """What the query was read as: its language, and (with a classifier) its likely intents
    and the articles their links lifted."""

    language: str | None
    intent: str | None = None
    probability: float | None = None
    alternatives: list[dict] = field(default_factory=list)
    lifted: list[int] = field(default_factory=list)
    used: bool = False  # the intents changed the ranking's inputs


def knowledge_search(
    *,
    query: str,
    k: int = 5,
    mode: str = "hybrid",
    intents: bool = True,
    **filters,  # type: ignore[no-untyped-def]
) -> tuple[list[SearchHit], SearchReading]:
    """The `k` best articles for `query` (each as its best passage) and how it was read.
    Raises ValidationError as `chunk_search` does (empty or oversized query, bad k, mode)."""
    text = query_validate(query)
    if text is None:
        return [], SearchReading(language=None)
    if not intents or mode == "fulltext":
        vector = None if mode == "fulltext" else embeddings.embed([text[:QUERY_CHARS]])[0]
        hits = chunk_search(query=text, k=k, mode=mode, query_vector=vector, **filters)
        return hits, SearchReading(language=detect_language(text))
    # Triage first: its pass through the encoder leaves the query's embedding for the search.
    triage = message_classify(text=text[:QUERY_CHARS])
    vector = embeddings.embed([text[:QUERY_CHARS]])[0]
    reading = SearchReading(language=triage.language)
    fetched = chunk_search(
        query=text,
        k=min(MAX_RESULTS, max(k, settings.KNOWLEDGE_SEARCH_OVERFETCH)),
        mode=mode,
        query_vector=vector,
        **filters,
    )
    if not triage.intent:
        return fetched[:k], reading
    intent_links_ensure(
        classifier_version_id=triage.classifier_version_id,
        knowledge_version=knowledge_version(),
        from_pipeline=True,
    )
    alternatives: list[dict] = [
        {"intent": a.intent, "probability": a.probability} for a in triage.alternatives
    ]
    links = intents_article_weights(intents=[str(a["intent"]) for a in alternatives])
    boosts = article_probabilities(alternatives, links)
    missing = [
        article_id
        for article_id, mass in sorted(boosts.items(), key=lambda item: -item[1])
        if mass >= settings.KNOWLEDGE_SEARCH_ADD_MASS
        and all(hit.article_id != article_id for hit in fetched)
    ]
    floor = min((hit.score for hit in fetched), default=0.0)
    added = [
        replace(hit, score=floor)
        for hit in article_best_chunks(article_ids=missing, query_vector=vector, **filters)
    ]
    boost = settings.KNOWLEDGE_SEARCH_INTENT_BOOST
    ranked = sorted(
        fetched + added, key=lambda hit: -(hit.score + boost * boosts.get(hit.article_id, 0.0))
    )[:k]
    return ranked, replace(
        reading,
        intent=triage.intent,
        probability=round(triage.confidence, 4),
        alternatives=[
            {"intent": a["intent"], "probability": round(a["probability"], 4)}
            for a in alternatives[:3]
        ],
        lifted=[hit.article_id for hit in ranked if boosts.get(hit.article_id, 0.0) > 0],
        used=True,
    )
