"""Retrieval quality on the demo gold set: hit@1, hit@5 and MRR per search mode.

    .venv/bin/python benchmarks/retrieval_quality.py [--sweep]

Imports fixtures/demo/kb into a throwaway database, then asks every question of
fixtures/demo/gold/retrieval.tsv. Questions alternate between a `dev` half (the only one
the fusion settings were tuned on) and a held-out `test` half; both are reported.
`--sweep` prints the dev/test figures of a small grid of fusion settings.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from knowledge_bench_db import BASE_DIR, database_setup

GOLD = BASE_DIR / "fixtures/demo/gold/retrieval.tsv"
KB = BASE_DIR / "fixtures/demo/kb"


def gold_load() -> list[tuple[str, str, str]]:
    with GOLD.open(newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return [
        (row["question"], row["expected"], "dev" if index % 2 == 0 else "test")
        for index, row in enumerate(rows)
    ]


def evaluate(questions, vectors, *, mode, fusion):  # type: ignore[no-untyped-def]
    from apps.knowledge.selectors import chunk_search

    ranks = []
    for (question, expected, _), vector in zip(questions, vectors, strict=True):
        hits = chunk_search(
            query=question, k=10, mode=mode, fusion=fusion, query_vector=vector, source="demo"
        )
        ids = [hit.external_id for hit in hits]
        ranks.append(ids.index(expected) + 1 if expected in ids else None)
    count = len(ranks) or 1
    return {
        "hit@1": sum(rank == 1 for rank in ranks) / count,
        "hit@5": sum(rank is not None and rank <= 5 for rank in ranks) / count,
        "mrr": sum(1 / rank for rank in ranks if rank) / count,
        "misses": [q for (q, _, _), rank in zip(questions, ranks, strict=True) if rank != 1],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sweep", action="store_true")
    parser.add_argument("--misses", action="store_true", help="print questions not ranked first")
    arguments = parser.parse_args()
    database_setup("retrieval")
    from apps.knowledge.imports import kb_import
    from apps.knowledge.selectors import DEFAULT_FUSION
    from apps.llm import embeddings

    started = time.perf_counter()
    report = kb_import(paths=[KB], source_name="demo")
    print(f"imported demo KB in {time.perf_counter() - started:.1f} s: {report.summary()}")
    gold = gold_load()
    splits = {
        "dev": [g for g in gold if g[2] == "dev"],
        "test": [g for g in gold if g[2] == "test"],
    }
    vectors = {name: embeddings.embed([q for q, _, _ in rows]) for name, rows in splits.items()}
    print(f"gold set: {len(gold)} questions ({len(splits['dev'])} dev, {len(splits['test'])} test)")
    print(f"fusion: {DEFAULT_FUSION}")
    print(f"{'mode':10} {'split':5} {'hit@1':>6} {'hit@5':>6} {'MRR':>6}")
    for mode in ("vector", "fulltext", "hybrid"):
        for name in ("dev", "test", "all"):
            rows = gold if name == "all" else splits[name]
            vecs = vectors["dev"] + vectors["test"] if name == "all" else vectors[name]
            if name == "all":
                rows = splits["dev"] + splits["test"]
            result = evaluate(rows, vecs, mode=mode, fusion=DEFAULT_FUSION)
            print(
                f"{mode:10} {name:5} {result['hit@1']:6.3f} {result['hit@5']:6.3f} "
                f"{result['mrr']:6.3f}"
            )
            if arguments.misses and name == "all":
                for miss in result["misses"]:
                    print(f"    miss: {miss}")
    if arguments.sweep:
        print("\nsweep (hybrid): rrf_k, vector_weight, fulltext_weight -> dev MRR / test MRR")
        for rrf_k in (10, 30, 60):
            for vector_weight, fulltext_weight in (
                (1.0, 1.0),
                (1.0, 0.7),
                (1.0, 0.5),
                (1.0, 0.3),
                (1.0, 0.2),
            ):
                fusion = replace(
                    DEFAULT_FUSION,
                    rrf_k=rrf_k,
                    vector_weight=vector_weight,
                    fulltext_weight=fulltext_weight,
                )
                dev = evaluate(splits["dev"], vectors["dev"], mode="hybrid", fusion=fusion)
                test = evaluate(splits["test"], vectors["test"], mode="hybrid", fusion=fusion)
                print(
                    f"  k={rrf_k:3} wv={vector_weight:.1f} wf={fulltext_weight:.1f}  "
                    f"dev hit@1 {dev['hit@1']:.3f} MRR {dev['mrr']:.3f}  |  "
                    f"test hit@1 {test['hit@1']:.3f} MRR {test['mrr']:.3f}"
                )


if __name__ == "__main__":
    main()
