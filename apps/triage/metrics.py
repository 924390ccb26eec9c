"""Quality figures of a classifier from its (cross-validated) predictions."""

from __future__ import annotations

from collections import Counter

import numpy as np
from sklearn.metrics import f1_score, precision_recall_fscore_support

CONFIDENT_THRESHOLD = 0.9


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, *, bins: int = 15
) -> float:
    """Weighted gap between confidence and accuracy over equal-width confidence bins."""
    if len(confidence) == 0:
        return 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    # Bin i holds (edges[i], edges[i+1]]; a confidence of exactly 0 goes to the first bin.
    indexes = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    error = 0.0
    for index in range(bins):
        in_bin = indexes == index
        if in_bin.any():
            gap = abs(correct[in_bin].mean() - confidence[in_bin].mean())
            error += in_bin.mean() * gap
    return float(error)


def classification_metrics(
    *,
    true: np.ndarray,
    predicted: np.ndarray,
    confidence: np.ndarray,
    labels: list[str],
    confused_pairs: int = 10,
) -> dict:
    """Accuracy, macro-F1, per-intent precision/recall, most confused pairs, ECE and
    precision among confident predictions. `true`/`predicted` are label indexes."""
    correct = (true == predicted).astype(float)
    label_indexes = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(
        true, predicted, labels=label_indexes, zero_division=0
    )
    per_intent = {
        labels[i]: {
            "precision": round(float(precision[i]), 4),
            "recall": round(float(recall[i]), 4),
            "f1": round(float(f1[i]), 4),
            "support": int(support[i]),
        }
        for i in label_indexes
    }
    mistakes = Counter(
        (labels[t], labels[p]) for t, p in zip(true, predicted, strict=True) if t != p
    )
    confident = confidence >= CONFIDENT_THRESHOLD
    return {
        "examples": len(true),
        "accuracy": round(float(correct.mean()), 4) if len(true) else 0.0,
        "macro_f1": round(
            float(
                f1_score(true, predicted, labels=label_indexes, average="macro", zero_division=0)
            ),
            4,
        ),
        "ece": round(expected_calibration_error(confidence, correct), 4),
        "precision_at_confidence_0_9": (
            round(float(correct[confident].mean()), 4) if confident.any() else None
        ),
        "coverage_at_confidence_0_9": round(float(confident.mean()), 4) if len(true) else 0.0,
        "most_confused": [
            {"intent": t, "predicted": p, "count": count}
            for (t, p), count in mistakes.most_common(confused_pairs)
        ],
        "per_intent": per_intent,
    }
