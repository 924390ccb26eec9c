"""Ingestion throughput: chunks embedded per second by `kb_import`, against raw model.encode.

    .venv/bin/python benchmarks/ingest_throughput.py [--articles 300]

Writes a synthetic help center (Markdown articles made of the demo KB's sentences, each
article with its own product names and numbers so no text repeats), then in one run:
1. the raw model's throughput: `SentenceTransformer.encode` on exactly the texts the
   pipeline embeds (same batch size), the baseline;
2. `kb_import` of the folder into an empty database (parse, chunk, tokenise, embed, cache,
   write); 3. the same import again (everything unchanged: nothing embedded).
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from knowledge_bench_db import BASE_DIR, database_setup

PRODUCTS = ["Aster", "Birch", "Cedar", "Dune", "Elm", "Fjord", "Garnet", "Heath", "Iris", "Juniper"]
ITEMS = ["teapot", "rug", "duvet", "casserole", "lamp", "vase", "towel set", "mug", "chair", "bowl"]


def synthetic_help_center(folder: Path, count: int, rng: random.Random) -> None:
    sentences = []
    for file in sorted((BASE_DIR / "fixtures/demo/kb").rglob("*.md")):
        text = file.read_text().split("---", 2)[-1]
        sentences += [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.split()) > 5]
    sentences = [s for s in sentences if not s.startswith(("#", "|", "-", "1."))]
    for number in range(count):
        product = f"{rng.choice(PRODUCTS)} {rng.choice(ITEMS)} {number}"
        lines = [f"# Caring for and returning the {product}", ""]
        for section in range(rng.randint(2, 5)):
            lines += [f"## {product}: part {section + 1}", ""]
            for _ in range(rng.randint(2, 5)):
                picked = rng.sample(sentences, rng.randint(2, 4))
                lines += [" ".join(picked) + f" Reference {product}-{rng.randint(0, 99999)}.", ""]
            if rng.random() < 0.3:
                lines += [f"- {product} size {size}: {rng.randint(10, 99)} cm" for size in "SML"]
                lines.append("")
        (folder / f"article-{number:04d}.md").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--articles", type=int, default=300)
    arguments = parser.parse_args()
    database_setup("ingest")
    from django.conf import settings

    from apps.knowledge.chunking import embedded_text
    from apps.knowledge.imports import kb_import
    from apps.knowledge.models import Chunk
    from apps.llm import embeddings

    model = embeddings.get_model()
    model.encode(["warm up the model"] * 8)
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        synthetic_help_center(folder, arguments.articles, random.Random(11))
        # The pipeline's texts, for the baseline: chunk once in a scratch import, then reset.
        started = time.perf_counter()
        report = kb_import(paths=[folder], source_name="bench")
        pipeline_seconds = time.perf_counter() - started
        texts = [
            embedded_text(context=context, text=text)
            for context, text in Chunk.objects.order_by("id").values_list("context", "text")
        ]
        started = time.perf_counter()
        model.encode(
            texts,
            batch_size=settings.EMBEDDING_BATCH_SIZE,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        raw_seconds = time.perf_counter() - started
        started = time.perf_counter()
        again = kb_import(paths=[folder], source_name="bench")
        reimport_seconds = time.perf_counter() - started
    chunks = len(texts)
    tokens = sum(Chunk.objects.values_list("token_count", flat=True))
    pipeline_rate = report.embedded / pipeline_seconds
    raw_rate = chunks / raw_seconds
    print(f"{arguments.articles} articles -> {chunks} chunks, {tokens / chunks:.0f} tokens/chunk")
    print(f"import:      {report.summary()}")
    print(f"raw model.encode:   {raw_seconds:7.1f} s  {raw_rate:7.1f} chunks/s  (baseline)")
    print(f"kb_import (cold):   {pipeline_seconds:7.1f} s  {pipeline_rate:7.1f} chunks/s")
    print(f"pipeline / raw throughput ratio: {pipeline_rate / raw_rate:.2f}")
    print(f"kb_import (unchanged re-import): {reimport_seconds:.1f} s, {again.embedded} embedded")


if __name__ == "__main__":
    main()
