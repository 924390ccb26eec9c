"""Reads of the knowledge base; `chunk_search` is the retrieval used by the copilot and API.

Hybrid search: pgvector cosine over the HNSW index and PostgreSQL full text over the GIN
index, each collapsed to one rank per article, fused by weighted reciprocal rank fusion.
Only published articles and chunks of the active embedding model are searched.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction

from apps.core.exceptions import ValidationError
from apps.knowledge.chunking import embedded_text
from apps.knowledge.models import FULLTEXT_CONFIG, Article, ArticleStatus, Chunk, Visibility
from apps.llm import embeddings

SEARCH_MODES = ("hybrid", "vector", "fulltext")
MAX_QUERY_CHARACTERS = 2000
MAX_RESULTS = 50
_WORD = re.compile(r"\w", re.UNICODE)


@dataclass(frozen=True)
class FusionSettings:
    """Tuned on the dev half of the demo gold set only (benchmarks/retrieval_quality.py).

    Full text weighs less than vectors: its OR-matching ranks well for exact terms (codes,
    product names) but worse than embeddings for paraphrased questions (dev MRR 0.73 vs 0.92).
    """

    rrf_k: int = 60
    vector_weight: float = 1.0
    fulltext_weight: float = 0.3
    # Chunks fetched per list before collapsing to articles; multiplied when filtering.
    candidates: int = 60
    filter_overfetch: int = 4
    max_candidates: int = 1000
    # Above this many estimated full-text matches, hybrid search ranks a bounded pool only.
    fulltext_max_ranked: int = 20_000
    # ...and always above this many chunks: the planner underestimates words that are not
    # among its most common elements (measured at 1M synthetic chunks: hybrid p95 0.77 s).
    fulltext_full_rank_max_chunks: int = 300_000


DEFAULT_FUSION = FusionSettings()


@dataclass(frozen=True)
class SearchHit:
    article_id: int
    external_id: str
    source: str
    title: str
    url: str
    heading_path: str
    text: str
    chunk_id: int
    score: float  # the fused score (RRF in hybrid mode; similarity or text rank otherwise)
    similarity: float | None  # cosine similarity of this chunk to the query (None in fulltext)
    vector_rank: int | None  # article rank in the vector list (1-based), None if absent
    fulltext_rank: int | None
    fulltext_score: float | None


@dataclass(frozen=True)
class _Candidate:
    chunk_id: int
    article_id: int
    score: float


def query_validate(query: object) -> str | None:
    """The normalised query, or None when there is nothing to search (punctuation only)."""
    if not isinstance(query, str):
        raise ValidationError("the query must be text", field="q")
    query = query.replace("\x00", " ").strip()
    if not query:
        raise ValidationError("the query is empty", field="q")
    if len(query) > MAX_QUERY_CHARACTERS:
        raise ValidationError(
            f"the query is longer than {MAX_QUERY_CHARACTERS} characters", field="q"
        )
    if not _WORD.search(query):
        return None
    return query


def _vector_literal(vector: Sequence[float]) -> str:
    return "[" + ",".join(f"{value:.7g}" for value in vector) + "]"


def _filters_sql(
    *,
    visibility: Sequence[str] | None,
    language: str | None,
    tags: Sequence[str] | None,
    source: str | None,
) -> tuple[str, list[object]]:
    clauses = ["a.status = %s"]
    params: list[object] = [ArticleStatus.PUBLISHED]
    if visibility:
        clauses.append("a.visibility = ANY(%s)")
        params.append(list(visibility))
    if language:
        clauses.append("a.language = %s")
        params.append(language)
    if tags:
        clauses.append("a.tags && %s::varchar[]")
        params.append(list(tags))
    if source:
        clauses.append("s.name = %s")
        params.append(source)
    return " AND ".join(clauses), params


def chunk_search(
    *,
    query: str,
    k: int = 5,
    mode: str = "hybrid",
    visibility: Sequence[str] | None = None,
    language: str | None = None,
    tags: Sequence[str] | None = None,
    source: str | None = None,
    ef_search: int | None = None,
    fusion: FusionSettings = DEFAULT_FUSION,
    query_vector: Sequence[float] | None = None,
) -> list[SearchHit]:
    """The `k` best articles for `query`, each as its best-matching chunk, best first.

    Raises ValidationError for an empty or too long query, a bad `k` or `mode`; returns []
    for a query with no words (punctuation only). Filters are exact: over-fetching keeps
    recall, and an exact scan takes over when the index candidates run out.
    """
    text = query_validate(query)
    if mode not in SEARCH_MODES:
        raise ValidationError(f"mode must be one of {', '.join(SEARCH_MODES)}", field="mode")
    if not isinstance(k, int) or not 1 <= k <= MAX_RESULTS:
        raise ValidationError(f"k must be between 1 and {MAX_RESULTS}", field="k")
    for value in visibility or []:
        if value not in Visibility.values:
            raise ValidationError(f"unknown visibility {value!r}", field="visibility")
    if text is None:
        return []
    filtered = bool(visibility or language or tags or source)
    where, params = _filters_sql(visibility=visibility, language=language, tags=tags, source=source)
    candidates = min(
        fusion.max_candidates,
        max(fusion.candidates, k * 4) * (fusion.filter_overfetch if filtered else 1),
    )
    vector = None
    if mode != "fulltext":
        vector = _vector_literal(
            query_vector if query_vector is not None else embeddings.embed([text])[0]
        )
    ef = max(ef_search or settings.KNOWLEDGE_HNSW_EF_SEARCH, candidates)
    vector_list: list[_Candidate] = []
    text_list: list[_Candidate] = []
    with transaction.atomic(), connection.cursor() as cursor:
        if vector is not None:
            # HNSW returns at most ef_search rows: it must cover the over-fetched candidates.
            cursor.execute("SELECT set_config('hnsw.ef_search', %s, true)", [str(ef)])
            vector_list = _vector_candidates(cursor, vector, where, params, candidates, k)
        if mode != "vector":
            text_list = _fulltext_candidates(
                cursor,
                text,
                where,
                params,
                candidates,
                max_ranked=fusion.fulltext_max_ranked,
                max_chunks_full_rank=fusion.fulltext_full_rank_max_chunks,
                rerank_ids=[c.chunk_id for c in vector_list] if mode == "hybrid" else None,
            )
        vector_ranks = _collapse(vector_list)
        text_ranks = _collapse(text_list)
        ranked = _fuse(mode, vector_ranks, text_ranks, fusion)[:k]
        if not ranked:
            return []
        return _hits(cursor, ranked, vector, vector_ranks, text_ranks)


def article_best_chunks(
    *,
    article_ids: Sequence[int],
    query_vector: Sequence[float],
    visibility: Sequence[str] | None = None,
    language: str | None = None,
    tags: Sequence[str] | None = None,
    source: str | None = None,
) -> list[SearchHit]:
    """Each of these (published, filter-passing) articles as its chunk nearest the query,
    scored by that similarity (no fusion rank): for a caller that knows which articles it
    wants and asks which passage of each fits the query best."""
    if not article_ids:
        return []
    where, params = _filters_sql(visibility=visibility, language=language, tags=tags, source=source)
    vector = _vector_literal(query_vector)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT DISTINCT ON (c.article_id) c.article_id, c.id, 1 - (c.embedding <=> %s::vector)
            FROM knowledge_chunk c
            JOIN knowledge_article a ON a.id = c.article_id
            JOIN knowledge_source s ON s.id = a.source_id
            WHERE c.article_id = ANY(%s) AND c.embedding_model = %s AND {where}
            ORDER BY c.article_id, (c.embedding <=> %s::vector) + 0
            """,  # noqa: S608 - `where` is built from fixed clauses; values are parameters
            [vector, list(article_ids), embeddings.model_name(), *params, vector],  # type: ignore[list-item]
        )
        rows = cursor.fetchall()
        ranked = [(row[0], float(row[2]), row[1]) for row in rows]
        return _hits(cursor, ranked, vector, {}, {}) if ranked else []


def _vector_candidates(
    cursor, vector: str, where: str, params: list[object], limit: int, k: int
) -> list[_Candidate]:  # type: ignore[no-untyped-def]
    model = embeddings.model_name()
    cursor.execute(
        f"""
        SELECT v.id, v.article_id, v.distance
        FROM (
            SELECT c.id, c.article_id, c.embedding <=> %s::vector AS distance
            FROM knowledge_chunk c
            WHERE c.embedding_model = %s
            ORDER BY c.embedding <=> %s::vector
            LIMIT %s
        ) v
        JOIN knowledge_article a ON a.id = v.article_id
        JOIN knowledge_source s ON s.id = a.source_id
        WHERE {where}
        ORDER BY v.distance
        """,  # noqa: S608 - `where` is built from fixed clauses; values are parameters
        [vector, model, vector, limit, *params],
    )
    rows = cursor.fetchall()
    if len({row[1] for row in rows}) >= k:
        return [_Candidate(row[0], row[1], 1.0 - row[2]) for row in rows]
    # Too few articles passed the filters among the index candidates: exact scan of the
    # filtered set. `+ 0` keeps the planner off the HNSW index, whose filtered results
    # would be incomplete (pgvector 0.6 has no iterative index scan).
    cursor.execute(
        f"""
        SELECT c.id, c.article_id, c.embedding <=> %s::vector AS distance
        FROM knowledge_chunk c
        JOIN knowledge_article a ON a.id = c.article_id
        JOIN knowledge_source s ON s.id = a.source_id
        WHERE c.embedding_model = %s AND {where}
        ORDER BY (c.embedding <=> %s::vector) + 0
        LIMIT %s
        """,  # noqa: S608
        [vector, model, *params, vector, limit],
    )
    return [_Candidate(row[0], row[1], 1.0 - row[2]) for row in cursor.fetchall()]


def _fulltext_candidates(
    cursor,
    text: str,
    where: str,
    params: list[object],
    limit: int,
    *,
    max_ranked: int,
    max_chunks_full_rank: int,
    rerank_ids: list[int] | None,
) -> list[_Candidate]:  # type: ignore[no-untyped-def]
    # Any word may match (OR): customers' questions rarely contain every word of the answer;
    # ts_rank orders by how many, how often and where (title/headings weigh more). On the dev
    # half of the gold set, `english` (stemming, stop words) beat `simple` by far (full-text
    # MRR 0.73 vs 0.47); log-length normalisation (1) scored 0.73 alone vs 0.76 without, but
    # fused better (hybrid dev MRR 0.919 vs 0.893), so it stays. Both gaps are 1-2 questions.
    # The query's words and the table's size (as of the last ANALYZE: free, unlike count(*);
    # -1 when never analysed) in one round trip.
    cursor.execute(
        "SELECT replace(plainto_tsquery(%s::regconfig, %s)::text, ' & ', ' | '), "
        "(SELECT reltuples FROM pg_class WHERE oid = 'knowledge_chunk'::regclass)",
        [FULLTEXT_CONFIG, text],
    )
    any_word, chunks = cursor.fetchone()
    if not any_word:
        return []  # only stop words
    chunks = int(chunks if chunks is not None else -1)
    pool = "knowledge_chunk"
    pool_params: list[object] = []
    if rerank_ids is not None and (
        chunks > max_chunks_full_rank
        # an analysed table smaller than the bound cannot match more than it: no estimate
        or (
            (chunks < 0 or chunks > max_ranked)
            and _estimated_matches(cursor, any_word) > max_ranked
        )
    ):
        # Ranking every chunk that shares one word with the query costs O(matches): ~0.4 s at
        # 1M chunks. Past `max_ranked` estimated matches, rank only the vector candidates
        # and the chunks containing every word of the query (exact terms still count).
        pool = """(
            SELECT * FROM knowledge_chunk WHERE id = ANY(%s)
            UNION
            SELECT * FROM knowledge_chunk WHERE search_vector @@ plainto_tsquery(%s::regconfig, %s)
        )"""
        pool_params = [rerank_ids, FULLTEXT_CONFIG, text]
    cursor.execute(
        f"""
        SELECT c.id, c.article_id, ts_rank(c.search_vector, %s::tsquery, 1) AS rank
        FROM {pool} c
        JOIN knowledge_article a ON a.id = c.article_id
        JOIN knowledge_source s ON s.id = a.source_id
        WHERE c.search_vector @@ %s::tsquery AND c.embedding_model = %s AND {where}
        ORDER BY rank DESC, c.id
        LIMIT %s
        """,  # noqa: S608 - fixed SQL fragments; values are parameters
        [any_word, *pool_params, any_word, embeddings.model_name(), *params, limit],
    )
    return [_Candidate(row[0], row[1], float(row[2])) for row in cursor.fetchall()]


def _estimated_matches(cursor, tsquery: str) -> int:  # type: ignore[no-untyped-def]
    """The planner's estimate (GIN statistics from ANALYZE) of chunks matching `tsquery`."""
    cursor.execute(
        "EXPLAIN (FORMAT JSON) SELECT 1 FROM knowledge_chunk WHERE search_vector @@ %s::tsquery",
        [tsquery],
    )
    plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


def _collapse(candidates: list[_Candidate]) -> dict[int, tuple[int, _Candidate]]:
    """article id → (1-based article rank, its best chunk), from a best-first chunk list."""
    ranks: dict[int, tuple[int, _Candidate]] = {}
    for candidate in candidates:
        if candidate.article_id not in ranks:
            ranks[candidate.article_id] = (len(ranks) + 1, candidate)
    return ranks


def _fuse(
    mode: str,
    vector_ranks: dict[int, tuple[int, _Candidate]],
    text_ranks: dict[int, tuple[int, _Candidate]],
    fusion: FusionSettings,
) -> list[tuple[int, float, int]]:
    """[(article id, score, chunk id)] best first."""
    if mode == "vector":
        return [(a, c.score, c.chunk_id) for a, (_, c) in vector_ranks.items()]
    if mode == "fulltext":
        return [(a, c.score, c.chunk_id) for a, (_, c) in text_ranks.items()]
    scores: dict[int, float] = {}
    for article_id, (rank, _) in vector_ranks.items():
        scores[article_id] = fusion.vector_weight / (fusion.rrf_k + rank)
    for article_id, (rank, _) in text_ranks.items():
        scores[article_id] = scores.get(article_id, 0.0) + fusion.fulltext_weight / (
            fusion.rrf_k + rank
        )
    ordered = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
    fused = []
    for article_id, score in ordered:
        # The passage shown: the vector list's best chunk (it reads as an answer), else FTS's.
        best = vector_ranks.get(article_id) or text_ranks[article_id]
        fused.append((article_id, score, best[1].chunk_id))
    return fused


def _hits(cursor, ranked, vector, vector_ranks, text_ranks) -> list[SearchHit]:  # type: ignore[no-untyped-def]
    chunk_ids = [chunk_id for _, _, chunk_id in ranked]
    similarity = "1 - (c.embedding <=> %s::vector)" if vector is not None else "NULL::float"
    cursor.execute(
        f"""
        SELECT c.id, c.heading_path, c.text, a.id, a.external_id, a.title, a.url, s.name,
               {similarity}
        FROM knowledge_chunk c
        JOIN knowledge_article a ON a.id = c.article_id
        JOIN knowledge_source s ON s.id = a.source_id
        WHERE c.id = ANY(%s)
        """,  # noqa: S608
        ([vector] if vector is not None else []) + [chunk_ids],
    )
    rows = {row[0]: row for row in cursor.fetchall()}
    hits = []
    for article_id, score, chunk_id in ranked:
        row = rows[chunk_id]
        text_entry = text_ranks.get(article_id)
        vector_entry = vector_ranks.get(article_id)
        hits.append(
            SearchHit(
                article_id=article_id,
                external_id=row[4],
                source=row[7],
                title=row[5],
                url=row[6],
                heading_path=row[1],
                text=row[2],
                chunk_id=chunk_id,
                score=float(score),
                similarity=float(row[8]) if row[8] is not None else None,
                vector_rank=vector_entry[0] if vector_entry else None,
                fulltext_rank=text_entry[0] if text_entry else None,
                fulltext_score=text_entry[1].score if text_entry else None,
            )
        )
    return hits


def article_get(*, source_name: str, external_id: str) -> Article | None:
    return (
        Article.objects.select_related("source")
        .filter(source__name=source_name, external_id=external_id)
        .first()
    )


def article_counts() -> dict[str, int]:
    return {
        "published": Article.objects.filter(status=ArticleStatus.PUBLISHED).count(),
        "draft": Article.objects.filter(status=ArticleStatus.DRAFT).count(),
    }


def knowledge_version() -> str:
    """A string that changes whenever the searchable knowledge base does.

    Built from the published articles' count, their summed versions and latest update: an
    import, edit, unpublish or delete changes one of them. Caches key on it, so a KB change
    makes every cached answer unreachable without an explicit flush.
    """
    from django.db.models import Count, Max, Sum

    row = Article.objects.filter(status=ArticleStatus.PUBLISHED).aggregate(
        count=Count("id"), versions=Sum("version"), latest=Max("updated_at")
    )
    latest = row["latest"].timestamp() if row["latest"] else 0
    return f"{row['count']}-{row['versions'] or 0}-{latest:.6f}"


def article_languages() -> set[str]:
    """Languages the published knowledge base is written in."""
    return set(
        Article.objects.filter(status=ArticleStatus.PUBLISHED)
        .values_list("language", flat=True)
        .distinct()
    )


def articles_by_external_id(*, external_ids: Sequence[str]) -> dict[str, Article]:
    """Published or not, by external id (any source); for linking intents to articles."""
    return {a.external_id: a for a in Article.objects.filter(external_id__in=list(external_ids))}


@dataclass(frozen=True)
class Passage:
    article_id: int
    text: str  # as the embedding model read it: title, heading path, passage
    vector: list[float]


def article_passages(*, article_ids: Sequence[int]) -> list[Passage]:
    """Every passage of these articles with its stored embedding (those embedded by the
    current model only), in article and position order: for reading what articles are about
    without embedding them again."""
    rows = (
        Chunk.objects.filter(
            article_id__in=list(article_ids), embedding_model=embeddings.model_name()
        )
        .order_by("article_id", "position")
        .values_list("article_id", "context", "text", "embedding")
    )
    return [
        Passage(
            article_id=article_id, text=embedded_text(context=context, text=text), vector=vector
        )
        for article_id, context, text, vector in rows
    ]
