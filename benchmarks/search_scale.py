"""Search at scale: latency p50/p95 and QPS at 10k and 100k chunks, HNSW recall@10.

    .venv/bin/python benchmarks/search_scale.py [--sizes 10000 100000] [--queries 200]
        [--ef-search 40 100 200 400 800]

Synthetic chunks (clustered random 384-d vectors, text from a 2,000-word vocabulary) are
COPYed straight into a throwaway database; the HNSW index is built after loading. For each
size: `chunk_search` latency per mode (query vector given, so the model is not timed), the
exact-scan baseline in the same run, and recall@10 of the HNSW index against exact search
at the shipped `hnsw.ef_search` and at each `--ef-search`, with the latency each costs.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from knowledge_bench_db import database_setup
from percentiles import percentile

DIMENSIONS = 384
CHUNKS_PER_ARTICLE = 5
CLUSTERS = 2000
# Per-dimension noise around a cluster centre: a noise vector of norm ~0.8 against a unit
# centre, so neighbours are related but not duplicates (uniform random vectors would have no
# neighbourhood structure at all, unlike real embeddings).
NOISE = 0.8 / DIMENSIONS**0.5
RARE_TAG_SHARE = 10  # one article in 10 carries the tag used by the filtered search


def vocabulary(rng: random.Random) -> list[str]:
    letters = "abcdefghijklmnoprstuvw"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(4, 9))) for _ in range(2000)]


def load(start: int, stop: int, *, rng: random.Random, words: list[str], centroids) -> None:  # type: ignore[no-untyped-def]
    """Insert chunks start..stop-1 (articles of CHUNKS_PER_ARTICLE chunks) with COPY."""
    from django.db import connection
    from pgvector.psycopg import register_vector

    from apps.knowledge.models import Source
    from apps.llm import embeddings

    model = embeddings.model_name()
    source, _ = Source.objects.get_or_create(name="synthetic")
    generator = np.random.default_rng(start)
    connection.ensure_connection()
    raw = connection.connection
    register_vector(raw)
    first_article, last_article = start // CHUNKS_PER_ARTICLE, (stop - 1) // CHUNKS_PER_ARTICLE
    with raw.cursor() as cursor:
        with cursor.copy(
            "COPY knowledge_article (id, source_id, external_id, title, body, url, language, "
            "visibility, tags, status, content_hash, version, created_at, updated_at) "
            "FROM STDIN"
        ) as copy:
            for article in range(first_article, last_article + 1):
                copy.write_row(
                    [
                        article + 1,
                        source.pk,
                        f"synthetic/{article}",
                        f"Article {article}",
                        "",
                        "",
                        "en",
                        "public",
                        "{rare}" if article % RARE_TAG_SHARE == 0 else "{}",
                        "published",
                        "x" * 64,
                        1,
                        "2026-01-01T00:00:00Z",
                        "2026-01-01T00:00:00Z",
                    ]
                )
        with cursor.copy(
            "COPY knowledge_chunk (article_id, position, heading_path, text, context, "
            "token_count, embedding, embedding_model) FROM STDIN WITH (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int8", "int4", "varchar", "text", "text", "int4", "vector", "varchar"])
            batch = 5000
            for offset in range(start, stop, batch):
                count = min(batch, stop - offset)
                labels = generator.integers(0, CLUSTERS, count)
                vectors = centroids[labels] + generator.normal(0, NOISE, (count, DIMENSIONS))
                vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
                for index in range(count):
                    number = offset + index
                    text = " ".join(rng.choices(words, k=40))
                    copy.write_row(
                        [
                            number // CHUNKS_PER_ARTICLE + 1,
                            number % CHUNKS_PER_ARTICLE,
                            "",
                            text,
                            f"Article {number // CHUNKS_PER_ARTICLE}",
                            60,
                            vectors[index].astype(np.float32),
                            model,
                        ]
                    )
    raw.commit()


def timed(function, arguments_list):  # type: ignore[no-untyped-def]
    latencies = []
    started = time.perf_counter()
    for arguments in arguments_list:
        began = time.perf_counter()
        function(arguments)
        latencies.append((time.perf_counter() - began) * 1000)
    elapsed = time.perf_counter() - started
    return percentile(latencies, 0.5), percentile(latencies, 0.95), len(arguments_list) / elapsed


def nearest_ids(vector, *, ef_search: int, exact: bool) -> list[int]:  # type: ignore[no-untyped-def]
    """Top-10 chunk ids through the HNSW index, or by exact scan (`+ 0` bypasses the index)."""
    from django.db import connection, transaction

    literal = "[" + ",".join(f"{v:.6f}" for v in vector) + "]"
    order = "(embedding <=> %s::vector) + 0" if exact else "embedding <=> %s::vector"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('hnsw.ef_search', %s, true)", [str(ef_search)])
        cursor.execute(f"SELECT id FROM knowledge_chunk ORDER BY {order} LIMIT 10", [literal])  # noqa: S608
        return [row[0] for row in cursor.fetchall()]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--ef-search",
        type=int,
        nargs="*",
        default=[40, 100, 200, 400, 800],
        help="hnsw.ef_search values whose recall and latency are measured beside the shipped one",
    )
    arguments = parser.parse_args()
    database_setup("scale")
    from django.conf import settings
    from django.db import connection

    from apps.knowledge.selectors import chunk_search

    rng = random.Random(7)
    words = vocabulary(rng)
    generator = np.random.default_rng(7)
    centroids = generator.normal(0, 1, (CLUSTERS, DIMENSIONS))
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    ef_search = settings.KNOWLEDGE_HNSW_EF_SEARCH
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        print(f"pgvector {cursor.fetchone()[0]}, shipped hnsw.ef_search = {ef_search}")
    loaded = 0
    for size in sorted(arguments.sizes):
        with connection.cursor() as cursor:
            # Bulk load without the HNSW index, then build it once: far faster than inserting.
            cursor.execute("DROP INDEX IF EXISTS knowledge_chunk_embedding_hnsw")
        began = time.perf_counter()
        load(loaded, size, rng=rng, words=words, centroids=centroids)
        load_seconds = time.perf_counter() - began
        loaded = size
        began = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("DROP INDEX IF EXISTS knowledge_chunk_embedding_hnsw")
            cursor.execute("SET maintenance_work_mem = '4GB'")
            cursor.execute(
                "CREATE INDEX knowledge_chunk_embedding_hnsw ON knowledge_chunk "
                "USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
            )
            cursor.execute("ANALYZE knowledge_chunk")
            cursor.execute("ANALYZE knowledge_article")
        build_seconds = time.perf_counter() - began
        print(f"\n== {size:,} chunks (load {load_seconds:.0f} s, HNSW build {build_seconds:.0f} s)")
        query_vectors = []
        for _ in range(arguments.queries):
            vector = centroids[generator.integers(0, CLUSTERS)] + generator.normal(
                0, NOISE, DIMENSIONS
            )
            query_vectors.append((vector / np.linalg.norm(vector)).tolist())
        queries = [(" ".join(rng.choices(words, k=4)), vector) for vector in query_vectors]
        # Exact neighbours once per query (a full scan: seconds each at a million chunks),
        # timed as the baseline and reused for the recall at every ef_search.
        exact: list[list[int]] = []
        exact_ms: list[float] = []
        for vector in query_vectors:
            began = time.perf_counter()
            exact.append(nearest_ids(vector, ef_search=ef_search, exact=True))
            exact_ms.append((time.perf_counter() - began) * 1000)
        print(f"{'search':28} {'p50 ms':>8} {'p95 ms':>8} {'QPS':>7}")
        rows = {}
        for mode in ("vector", "fulltext", "hybrid"):
            rows[mode] = timed(
                lambda q, mode=mode: chunk_search(query=q[0], query_vector=q[1], k=5, mode=mode),
                queries,
            )
        rows["hybrid, tag filter (10%)"] = timed(
            lambda q: chunk_search(query=q[0], query_vector=q[1], k=5, tags=["rare"]),
            queries,
        )
        rows["raw HNSW top-10 (SQL only)"] = timed(
            lambda v: nearest_ids(v, ef_search=ef_search, exact=False), query_vectors
        )
        rows["exact top-10 (baseline)"] = (
            percentile(exact_ms, 0.5),
            percentile(exact_ms, 0.95),
            1000 * len(exact_ms) / sum(exact_ms),
        )
        for name, (p50, p95, qps) in rows.items():
            print(f"{name:28} {p50:8.1f} {p95:8.1f} {qps:7.1f}")
        print(
            f"\nrecall@10 of the HNSW index against exact search ({len(query_vectors)} queries;"
            f" shipped ef_search = {ef_search}), with the latency it costs:"
        )
        print(f"{'ef_search':>9} {'recall@10':>9} {'raw p95 ms':>10} {'hybrid p95 ms':>13}")
        for ef in sorted({*arguments.ef_search, ef_search}):
            found = [nearest_ids(v, ef_search=ef, exact=False) for v in query_vectors]
            recall = statistics.mean(
                len(set(got) & set(want)) / 10 for got, want in zip(found, exact, strict=True)
            )
            raw_p95 = timed(
                lambda v, ef=ef: nearest_ids(v, ef_search=ef, exact=False), query_vectors
            )[1]
            hybrid_p95 = timed(
                lambda q, ef=ef: chunk_search(query=q[0], query_vector=q[1], k=5, ef_search=ef),
                queries,
            )[1]
            print(f"{ef:9d} {recall:9.3f} {raw_p95:10.1f} {hybrid_p95:13.1f}")


if __name__ == "__main__":
    main()
