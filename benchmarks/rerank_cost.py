"""What a late-interaction rerank of search results would cost at query time (issue 30).

A late-interaction score compares the query's last-layer token states with each candidate
passage's (as the classifier's token-match block does with training examples). The
passages' token states are not stored, so the encoder would have to read the candidates for
every query: this times that pass (one query and N passages of about a chunk's length, cut
from the Birchwood help center's articles) through `read_encoder`, the runtime the
deployment uses (ONNX Runtime by default).

    .venv/bin/python benchmarks/rerank_cost.py [--passages 5 10 20] [--runs 30]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.chdir(ROOT)
for name, value in {
    "DJANGO_SETTINGS_MODULE": "config.settings",
    "SECRET_KEY": "bench-" + "x" * 60,
    "DATABASE_URL": "postgres://bench@127.0.0.1:1/never-contacted",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "LOG_LEVEL": "WARNING",
}.items():
    os.environ.setdefault(name, value)

from percentiles import percentile  # noqa: E402

WORDS_PER_PASSAGE = 150  # about 200 of the encoder's tokens, a full chunk


def passages() -> list[str]:
    words: list[str] = []
    for path in sorted((ROOT / "fixtures/birch/kb").rglob("*.md")):
        words += re.sub(r"[#*`>\[\]()]", " ", path.read_text(encoding="utf-8")).split()
    count = len(words) // WORDS_PER_PASSAGE
    return [
        " ".join(words[i * WORDS_PER_PASSAGE : (i + 1) * WORDS_PER_PASSAGE]) for i in range(count)
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--passages", type=int, nargs="+", default=[5, 10, 20])
    parser.add_argument("--runs", type=int, default=30)
    arguments = parser.parse_args()
    import django

    django.setup()
    from apps.llm import embeddings

    texts = passages()
    tokens = statistics.median(embeddings.token_count(text) for text in texts)
    runtime = "ONNX Runtime" if embeddings.onnx_session() is not None else "torch"
    print(f"{len(texts)} passages of median {tokens:.0f} tokens; encoder under {runtime}")
    layer = embeddings._deepest()
    embeddings.read_encoder(["warm up", *texts[:5]], layer, tokens=True, remember=False)
    for count in arguments.passages:
        times = []
        for run in range(arguments.runs):
            chosen = [texts[(run * count + j) % len(texts)] for j in range(count)]
            began = time.perf_counter()
            embeddings.read_encoder(
                ["how do I freeze my card?", *chosen], layer, tokens=True, remember=False
            )
            times.append((time.perf_counter() - began) * 1000)
        print(
            f"query + {count:2d} passages: p50 {percentile(times, 0.5):7.1f} ms  "
            f"p95 {percentile(times, 0.95):7.1f} ms  ({arguments.runs} runs)"
        )


if __name__ == "__main__":
    main()
