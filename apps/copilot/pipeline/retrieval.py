"""Stage 3, retrieval: the knowledge-base passages the reply may use, best first.

Hybrid search (pgvector + full text) with the reading triage kept: a follow-up read in
context is searched in context. The search over-fetches, then lifts the articles linked to
the likely intents (each intent's probability times its link weight), so a passage of the
article that answers the intent wins over a few ranks of wording. Earlier questions still
open (a newer message superseded their drafts) get their own best article among the
passages, so the reply can answer them too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from apps.copilot.links import intent_links_ensure
from apps.copilot.models import HandoffReason
from apps.copilot.pipeline.context import Context
from apps.copilot.pipeline.reading import Reading, readings_agree
from apps.copilot.pipeline.record import Handoff
from apps.copilot.selectors import EffectivePolicy, intents_article_weights
from apps.core.exceptions import ValidationError
from apps.knowledge.selectors import SearchHit, chunk_search, knowledge_version
from apps.llm import embeddings, prompt_format

# Retrieval fetches more than it shows, so the intent boost can lift a linked article.
RETRIEVAL_OVERFETCH = 2
# Characters of the query the search reads (the embedding model reads ~256 word pieces).
QUERY_CHARS = 2000


@dataclass(frozen=True)
class Retrieval:
    hits: list[SearchHit]  # the passages, best first (after the intent boost)
    query: str  # what was searched
    question_vector: list[float]  # the query's embedding (the semantic cache reads it)
    searched_first: int | None  # the article the search ranked first, before the boost
    links: dict[int, float]  # the top intent's article links
    article_probability: dict[int, float]  # article → the likely intents' mass on it
    knowledge_version: str
    links_learned_ms: float | None = None  # this run learned the intent links first
    handoff: Handoff | None = None
    open_question_articles: list[int] = field(default_factory=list)
    # A follow-up's readings back the one kept (reading.readings_agree); True otherwise.
    readings_agree: bool = True

    @property
    def passages(self) -> list[prompt_format.Passage]:
        return [passage_of(index, hit) for index, hit in enumerate(self.hits, start=1)]

    def cited_json(self) -> dict[str, dict]:
        """passage id → the passage as a draft stores it."""
        return {f"P{index}": hit_json(f"P{index}", hit) for index, hit in enumerate(self.hits, 1)}


def passage_of(index: int, hit: SearchHit) -> prompt_format.Passage:
    return prompt_format.Passage(id=f"P{index}", text=hit.text, source=hit.external_id)


def hit_json(passage_id: str, hit: SearchHit) -> dict:
    return {
        "passage_id": passage_id,
        "article_id": hit.article_id,
        "external_id": hit.external_id,
        "title": hit.title,
        "url": hit.url,
        "heading_path": hit.heading_path,
        "chunk_id": hit.chunk_id,
        "passage": hit.text,
        "score": round(hit.score, 6),
        "similarity": round(hit.similarity, 4) if hit.similarity is not None else None,
    }


def article_probabilities(
    alternatives: list[dict], links: dict[str, dict[int, float]]
) -> dict[int, float]:
    """article id → the classifier's probability mass on intents linked to it (each
    alternative's probability times its link weight), capped at 1."""
    mass: dict[int, float] = {}
    for alternative in alternatives:
        for article_id, weight in links.get(alternative["intent"], {}).items():
            mass[article_id] = mass.get(article_id, 0.0) + alternative["probability"] * weight
    return {article_id: min(1.0, value) for article_id, value in mass.items()}


def rerank(hits: list[SearchHit], boosts: dict[int, float], boost: float) -> list[SearchHit]:
    # `boosts` is each article's intent probability mass (0..1). RRF scores are ~1/(60+rank):
    # a boost of 0.02 at full mass lifts a linked article above unlinked ones that are a few
    # ranks better, but not above a clearly better match.
    return sorted(hits, key=lambda hit: -(hit.score + boost * boosts.get(hit.article_id, 0.0)))


def _search(query: str, *, k: int, language: str | None, vector: list[float]) -> list[SearchHit]:
    try:
        return chunk_search(query=query, k=k, language=language, query_vector=vector)
    except ValidationError:  # a query with nothing searchable is not a crash
        return []


def passages_retrieve(*, context: Context, reading: Reading, policy: EffectivePolicy) -> Retrieval:
    """The passages for the kept reading; hands off when the knowledge base has none."""
    triage = reading.triage
    version = knowledge_version()
    # A classifier version with no learned links yet (a fresh instance's first messages):
    # learned here, once. After a knowledge-base change beat relearns them, off this path.
    started = time.perf_counter()
    learned = intent_links_ensure(
        classifier_version_id=triage.classifier_version_id,
        knowledge_version=version,
        from_pipeline=True,
    )
    learned_ms = round((time.perf_counter() - started) * 1000, 2) if learned else None
    query = reading.kept.text[:QUERY_CHARS]
    language = triage.language if triage.language in reading.languages else None
    vector = embeddings.embed([query])[0]
    hits = _search(
        query, k=min(50, policy.top_k * RETRIEVAL_OVERFETCH), language=language, vector=vector
    )
    alternatives = (
        [{"intent": a.intent, "probability": a.probability} for a in triage.alternatives]
        if triage.intent
        else []
    )
    read_intents = [i.intent for i in reading.interpretations if i.intent]
    links_by_intent = intents_article_weights(
        intents=[str(a["intent"]) for a in alternatives] + read_intents
    )
    boosts = article_probabilities(alternatives, links_by_intent)
    searched_first = hits[0].article_id if hits else None
    hits = rerank(hits, boosts, policy.intent_boost)[: policy.top_k]
    hits, open_articles = _with_open_questions(hits, context, language=language)
    return Retrieval(
        hits=hits,
        query=query,
        question_vector=vector,
        searched_first=searched_first,
        links=links_by_intent.get(triage.intent or "", {}),
        article_probability=boosts,
        knowledge_version=version,
        links_learned_ms=learned_ms,
        handoff=(
            None if hits else Handoff(HandoffReason.NO_ANSWER, "no knowledge-base passage matches")
        ),
        open_question_articles=open_articles,
        readings_agree=readings_agree(reading, lambda intent: _article_of(intent, links_by_intent)),
    )


def _article_of(intent: str, links: dict[str, dict[int, float]]) -> object:
    """The article that best answers `intent` by its links; the intent itself when it has
    none (two readings then agree only on the same intent)."""
    weights = links.get(intent)
    if not weights:
        return intent
    return max(sorted(weights), key=lambda article_id: weights[article_id])


def _with_open_questions(
    hits: list[SearchHit], context: Context, *, language: str | None
) -> tuple[list[SearchHit], list[int]]:
    """`hits`, with the best passage of each open earlier question in place of the weakest
    ones when its article is missing (never the first hit: it answers the newest message)."""
    if not context.open_questions or not hits:
        return hits, []
    articles = []
    kept = list(hits)
    for question in reversed(context.open_questions):  # newest open question first
        text = question[:QUERY_CHARS]
        found = _search(text, k=1, language=language, vector=embeddings.embed([text])[0])
        if not found:
            continue
        best = found[0]
        articles.append(best.article_id)
        if any(hit.article_id == best.article_id for hit in kept):
            continue
        replace_at = max(1, len(kept) - len(articles))
        if replace_at < len(kept):
            kept[replace_at] = best
        else:
            kept.append(best)
    return kept, articles
