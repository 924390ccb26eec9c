"""Issue 5's check, as near as this machine allows, on every question of Banking77's training
split: a fresh instance (`manage.py up`) is trained with `manage.py triage_train --activate`
on 9 folds of 10, and the 10th fold's questions, which it has never seen, are classified
through `POST /api/v1/triage/classify`; then the next fold, in the same instance. Banking77's
test split is not on this machine; this classifies ~1 000 unseen questions a fold, 10 000 in
all (or those of --only). Beside the cross-validation in `triage_train`'s own report (printed
per fold, to compare), it measures the model that is shipped (fitted on all 9 folds), with
its out-of-scope check, through the API, on questions its training never saw.

    .venv/bin/python benchmarks/triage_check.py [--folds 10] [--only 0,1,2] [--seed 0]
        [--data PATH] [--no-baseline] [--keep]

Prints per fold, then pooled, scored as the check scores the API's answers (an answer
flagged out of scope has no intent, so it counts as wrong, with its confidence): accuracy
(bar 0.935), expected calibration error (bar 0.03), precision and coverage at confidence
>= 0.9 (bar 0.98); also the out-of-scope flags and the accuracy of the top intent whether
flagged or not; per fold, the training's time (`triage_train`'s "trained in", without the
command's start) and its own cross-validated accuracy;
and, in the same run and on the same folds, the logistic regression on the frozen sentence
embeddings that the issue names as the baseline (in this process, on its own embeddings).
The exact duplicate questions are dropped first (as `triage_train` stores them once), so no
fold is tested on a text it was trained on. About 2.8 minutes a fold on 2 cores (28 for all 10).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import django  # noqa: E402

django.setup()

import httpx  # noqa: E402
import numpy as np  # noqa: E402
from acceptance import Instance, classify, train_on_rows  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import StratifiedKFold  # noqa: E402
from triage_banking77 import encode_fresh, find_data  # noqa: E402

from apps.triage.csv_import import training_csv_parse  # noqa: E402
from apps.triage.metrics import expected_calibration_error  # noqa: E402


def train(instance: Instance, texts: list[str], labels: list[str]) -> tuple[float, float]:
    """`triage_train --activate` on these rows: (its training seconds, its CV accuracy)."""
    report = train_on_rows(instance, zip(texts, labels, strict=True))
    seconds = re.search(r"trained in (\d+) s", report)
    accuracy = re.search(r"accuracy (0\.\d+)", report)
    if seconds is None or accuracy is None:
        sys.exit(f"unexpected triage_train report:\n{report}")
    return float(seconds.group(1)), float(accuracy.group(1))


def figures(correct: np.ndarray, confidence: np.ndarray) -> str:
    sure = confidence >= 0.9
    return (
        f"accuracy {correct.mean():.4f}, ECE {expected_calibration_error(confidence, correct):.4f}"
        f", at >= 0.9 {correct[sure].mean() if sure.any() else float('nan'):.4f} correct "
        f"(coverage {sure.mean():.1%})"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", help="Banking77's train.csv (else $BANKING77_CSV, ../shared)")
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--only", help="comma-separated fold numbers (default: every fold)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-baseline", action="store_true", help="skip the baseline")
    parser.add_argument("--keep", action="store_true", help="keep the instance's home")
    arguments = parser.parse_args()
    parsed = training_csv_parse(data=find_data(arguments.data).read_bytes())
    texts = [row.text for row in parsed.rows]
    labels = [row.intent for row in parsed.rows]
    print(f"{len(texts)} questions, {len(set(labels))} intents ({parsed.report.as_text()})")
    splits = list(
        StratifiedKFold(arguments.folds, shuffle=True, random_state=arguments.seed).split(
            texts, labels
        )
    )
    wanted = (
        [int(number) for number in arguments.only.split(",")]
        if arguments.only
        else range(arguments.folds)
    )
    embeddings = None if arguments.no_baseline else encode_fresh(texts)
    instance = Instance(ROOT / ".deskpilot" / "triage-check")
    instance.start()
    correct_all, top_all, scope_all, confidence_all, baseline_all, leads = [], [], [], [], [], []
    try:
        key = instance.manage("apikey_create", "triage-check").strip()
        with httpx.Client(
            base_url=instance.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=300
        ) as client:
            for number in wanted:
                fit, held = splits[number]
                seconds, cross_validated = train(
                    instance, [texts[i] for i in fit], [labels[i] for i in fit]
                )
                results = classify(client, [texts[i] for i in held])
                correct = np.array(
                    [r["intent"] == labels[i] for r, i in zip(results, held, strict=True)]
                )
                top = np.array(
                    [
                        bool(r["alternatives"]) and r["alternatives"][0]["intent"] == labels[i]
                        for r, i in zip(results, held, strict=True)
                    ]
                )
                confidence = np.array([r["confidence"] or 0.0 for r in results])
                scope = np.array([bool(r["out_of_scope"]) for r in results])
                correct_all.append(correct)
                top_all.append(top)
                scope_all.append(scope)
                confidence_all.append(confidence)
                line = (
                    f"fold {number}: trained on {len(fit)} in {seconds:.0f} s (its CV accuracy "
                    f"{cross_validated:.4f}); {len(held)} unseen: {figures(correct, confidence)}"
                    f", out of scope {scope.sum()} (top intent {top.mean():.4f})"
                )
                if embeddings is not None:
                    baseline = LogisticRegression(C=10.0, max_iter=3000).fit(
                        embeddings[fit], [labels[i] for i in fit]
                    )
                    right = baseline.predict(embeddings[held]) == np.array(labels)[held]
                    baseline_all.append(right)
                    leads.append(100 * (correct.mean() - right.mean()))
                    line += f"; baseline {right.mean():.4f} ({leads[-1]:+.2f} points)"
                print(line, flush=True)
    finally:
        instance.stop()
        if not arguments.keep:
            shutil.rmtree(instance.home, ignore_errors=True)
    correct, confidence = np.concatenate(correct_all), np.concatenate(confidence_all)
    margin = 1.96 * np.sqrt(correct.mean() * (1 - correct.mean()) / len(correct))
    print(
        f"\nall {len(correct_all)} folds, {len(correct)} unseen questions through the API: "
        f"{figures(correct, confidence)}; accuracy 95% interval +/- {margin:.4f}; out of "
        f"scope {np.concatenate(scope_all).sum()}; top intent {np.concatenate(top_all).mean():.4f}"
    )
    if baseline_all:
        spread = statistics.stdev(leads) if len(leads) > 1 else 0.0
        print(
            f"baseline (logistic regression on the frozen embeddings, same folds): accuracy "
            f"{np.concatenate(baseline_all).mean():.4f}; lead per fold mean "
            f"{statistics.mean(leads):+.2f} points, sd {spread:.2f}, "
            f"from {min(leads):+.2f} to {max(leads):+.2f}"
        )


if __name__ == "__main__":
    main()
