"""Triage benchmark on Banking77: train on a stratified 80 %, test on the held-back 20 %.

    .venv/bin/python benchmarks/triage_banking77.py [--data PATH] [--seed 0] [--without-layer]
        [--without-tokens]

The data is the Banking77 training split (CC-BY-4.0, PolyAI), looked for at --data, then
$BANKING77_CSV, then ../shared/data/banking77/train.csv beside the repository. Prints
accuracy, macro-F1, expected calibration error, precision and coverage at confidence
>= 0.9, the out-of-scope check on the test texts and on 40 off-topic ones, training time
(embeddings + 5-fold cross-validation + final fit), latency p50/p95 for one message and
throughput for batches of 64, each beside a plain logistic regression on the same frozen
embeddings measured in the same run. Needs no database: it runs the classifier code that
`messages_classify` runs, minus the two indexed queries.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
from django.conf import settings  # noqa: E402
from percentiles import percentile  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from apps.llm.embeddings import embed  # noqa: E402
from apps.triage import classifier  # noqa: E402
from apps.triage.classification import encoded, model_outcomes  # noqa: E402
from apps.triage.csv_import import training_csv_parse  # noqa: E402
from apps.triage.metrics import classification_metrics  # noqa: E402
from apps.triage.services import training_params  # noqa: E402
from apps.triage.signals import message_signals  # noqa: E402

# Messages no bank's customer would send (other trades, chit-chat, gibberish): how many the
# out-of-scope check catches, beside how many in-scope test texts it wrongly flags.
OFF_TOPIC = BASE_DIR / "benchmarks" / "data" / "off_topic.txt"


def find_data(argument: str | None) -> Path:
    for candidate in (
        argument,
        os.environ.get("BANKING77_CSV"),
        str(BASE_DIR.parent / "shared" / "data" / "banking77" / "train.csv"),
    ):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    sys.exit("Banking77 not found: pass --data PATH or set BANKING77_CSV")


def encode_fresh(texts: list[str]) -> np.ndarray:
    """What `embed` computes, never from its cache of recent single texts."""
    return np.asarray(embed(texts, cached=False), dtype=np.float32)


def figures(name: str, metrics: dict) -> str:
    precision = metrics["precision_at_confidence_0_9"]
    return (
        f"{name:<34} accuracy {metrics['accuracy']:.4f}  macro-F1 {metrics['macro_f1']:.4f}  "
        f"ECE {metrics['ece']:.4f}  precision@>=0.9 "
        f"{'n/a' if precision is None else f'{precision:.4f}'} "
        f"(coverage {metrics['coverage_at_confidence_0_9']:.1%})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--latency-samples", type=int, default=200)
    parser.add_argument(
        "--without-layer",
        action="store_true",
        help="train without the encoder-layer block (TRIAGE_ENCODER_LAYER_BLOCK=false); "
        "by default, the recipe the settings choose, as triage_train does",
    )
    parser.add_argument(
        "--without-tokens",
        action="store_true",
        help="train without the token-match block (TRIAGE_TOKEN_MATCH_BLOCK=false)",
    )
    arguments = parser.parse_args()

    path = find_data(arguments.data)
    parsed = training_csv_parse(data=path.read_bytes())
    texts = [row.text for row in parsed.rows]
    labels = [row.intent for row in parsed.rows]
    intents = sorted(set(labels))
    print(
        f"data: {path} ({len(texts)} usable rows, {len(intents)} intents, "
        f"{parsed.report.rows_skipped} skipped)"
    )
    train_rows, test_rows = train_test_split(
        np.arange(len(texts)), test_size=0.2, stratify=labels, random_state=arguments.seed
    )
    train_texts = [texts[i] for i in train_rows]
    train_labels = [labels[i] for i in train_rows]
    test_texts = [texts[i] for i in test_rows]
    index = {name: position for position, name in enumerate(intents)}
    test_targets = np.array([index[labels[i]] for i in test_rows])
    embed(["warm-up"])  # model loading is not training

    started = time.perf_counter()
    params = training_params()
    if arguments.without_layer:
        params = replace(params, layer_weight=0.0)
    if arguments.without_tokens:
        params = replace(params, token_weight=0.0)
    print(f"classifier: {params.method}")
    reading = encoded(train_texts, params)
    embedded = time.perf_counter()
    outcome = classifier.train(
        texts=train_texts,
        embeddings=reading.embeddings,
        layer_embeddings=reading.layers,
        tokens=reading.tokens,
        params=params,
        labels=train_labels,
        intents=intents,
        jobs=settings.TRIAGE_TRAINING_JOBS,
    )
    training_seconds = time.perf_counter() - started
    print(
        f"training on {len(train_texts)}: {training_seconds:.1f} s "
        f"(embeddings {embedded - started:.1f} s, {outcome.metrics['folds']}-fold CV + fit "
        f"{training_seconds - (embedded - started):.1f} s); artifact "
        f"{len(outcome.model.to_bytes()) / 1e6:.1f} MB"
    )
    cv = outcome.metrics
    print(figures("cross-validation on the 80 %", cv))
    if "passage_reader" in cv:
        reader = cv["passage_reader"]
        print(
            f"passage reader (no layer, neighbour or token block, for the copilot's link check): "
            f"cross-validated accuracy {reader['accuracy']:.4f}"
        )

    test_reading = encoded(test_texts, params)
    predictions = outcome.model.predict(test_texts, *test_reading)
    predicted = predictions.top_index
    ours = classification_metrics(
        true=test_targets, predicted=predicted, confidence=predictions.confidence, labels=intents
    )
    out_of_scope = predictions.nearest_similarity < outcome.model.out_of_scope_similarity
    print(figures("ours, held-out 20 %", ours))
    print(
        f"{'':<34} in-scope test texts flagged out of scope: {out_of_scope.mean():.2%} "
        f"(threshold {outcome.model.out_of_scope_similarity:.3f}); accuracy counting those "
        f"as wrong {np.mean((predicted == test_targets) & ~out_of_scope):.4f}"
    )
    off_topic = OFF_TOPIC.read_text(encoding="utf-8").splitlines()
    flagged = sum(scope for _, _, _, scope, _ in model_outcomes(off_topic, outcome.model))
    print(
        f"{'':<34} off-topic texts ({OFF_TOPIC.relative_to(BASE_DIR)}) flagged out of scope: "
        f"{flagged} of {len(off_topic)}"
    )

    baseline_started = time.perf_counter()
    baseline = LogisticRegression(C=10.0, max_iter=3000).fit(
        reading.embeddings, [index[label] for label in train_labels]
    )
    baseline_seconds = time.perf_counter() - baseline_started + (embedded - started)
    baseline_probabilities = baseline.predict_proba(test_reading.embeddings)
    base = classification_metrics(
        true=test_targets,
        predicted=baseline_probabilities.argmax(axis=1),
        confidence=baseline_probabilities.max(axis=1),
        labels=intents,
    )
    print(figures("baseline: logistic regression, emb", base))
    print(
        f"{'':<34} baseline training {baseline_seconds:.1f} s (embeddings + fit, no CV); "
        f"accuracy gain {100 * (ours['accuracy'] - base['accuracy']):+.2f} points"
    )

    rng = np.random.default_rng(arguments.seed)
    samples = [
        test_texts[i] for i in rng.choice(len(test_texts), arguments.latency_samples, replace=False)
    ]
    ours_latency, base_latency = [], []
    for text in samples:
        # The baseline encodes without `embed`'s cache of recent single texts, which would
        # otherwise hand one side the vector the other just computed.
        begin = time.perf_counter()
        baseline.predict_proba(encode_fresh([text]))
        base_latency.append(time.perf_counter() - begin)
        begin = time.perf_counter()
        message_signals(text)
        model_outcomes([text], outcome.model)
        ours_latency.append(time.perf_counter() - begin)
    batches = [test_texts[i : i + 64] for i in range(0, len(test_texts) - 63, 64)]
    begin = time.perf_counter()
    for batch in batches:
        [message_signals(text) for text in batch]
        model_outcomes(batch, outcome.model)
    ours_throughput = len(batches) * 64 / (time.perf_counter() - begin)
    begin = time.perf_counter()
    for batch in batches:
        baseline.predict_proba(encode_fresh(batch))
    base_throughput = len(batches) * 64 / (time.perf_counter() - begin)
    ours_p50, base_p50 = statistics.median(ours_latency), statistics.median(base_latency)
    print(
        f"one message ({len(samples)} samples): ours p50 {ours_p50 * 1000:.1f} ms p95 "
        f"{percentile(ours_latency, 0.95) * 1000:.1f} ms; baseline p50 {base_p50 * 1000:.1f} ms "
        f"p95 {percentile(base_latency, 0.95) * 1000:.1f} ms; ratio p50 {ours_p50 / base_p50:.2f}x"
    )
    print(
        f"batches of 64 ({len(batches)} batches): ours {ours_throughput:.0f} texts/s, baseline "
        f"{base_throughput:.0f} texts/s; ratio {ours_throughput / base_throughput:.2f}x"
    )


if __name__ == "__main__":
    main()
