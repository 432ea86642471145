"""Metric functions: plain, typed, no I/O."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support


def ratio(numerator: float, denominator: float) -> float:
    return round(numerator / denominator, 4) if denominator else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0–1) by nearest rank; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 1)


def classification_metrics(
    gold: Sequence[str], predicted: Sequence[str], confidence: Sequence[float], labels: Sequence[str]
) -> dict[str, object]:
    """Accuracy, macro-F1, per-class precision/recall/F1, confusion matrix (scikit-learn's) and calibration error."""
    correct = [g == p for g, p in zip(gold, predicted, strict=True)]
    if not gold:
        precision = recall = f1 = support = np.zeros(len(labels))
        matrix = np.zeros((len(labels), len(labels)), dtype=int)
    else:
        precision, recall, f1, support = precision_recall_fscore_support(
            gold, predicted, labels=list(labels), zero_division=0.0
        )
        matrix = confusion_matrix(gold, predicted, labels=list(labels))
    per_class = {
        label: {
            "precision": round(float(precision[i]), 4),
            "recall": round(float(recall[i]), 4),
            "f1": round(float(f1[i]), 4),
            "support": int(support[i]),
        }
        for i, label in enumerate(labels)
    }
    return {
        "n": len(gold),
        "accuracy": round(float(accuracy_score(gold, predicted)), 4) if gold else 0.0,
        "macro_f1": round(float(np.mean(f1)), 4) if len(labels) else 0.0,
        "per_class": per_class,
        "confusion": {g: {p: int(matrix[i, j]) for j, p in enumerate(labels)} for i, g in enumerate(labels)},
        "calibration_error": expected_calibration_error(confidence, correct),
    }


def expected_calibration_error(confidence: Sequence[float], correct: Sequence[bool], bins: int = 10) -> float:
    """|accuracy − confidence| averaged over equal-width confidence bins, weighted by bin size."""
    total = len(confidence)
    if not total:
        return 0.0
    error = 0.0
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        members = [i for i, c in enumerate(confidence) if low <= c < high or (b == bins - 1 and c == 1.0)]
        if members:
            accuracy = sum(correct[i] for i in members) / len(members)
            mean_confidence = sum(confidence[i] for i in members) / len(members)
            error += len(members) / total * abs(accuracy - mean_confidence)
    return round(error, 4)


def binary_metrics(gold: Sequence[bool], predicted: Sequence[bool]) -> dict[str, float]:
    """Precision and recall of the positive class (e.g. "abstained", "reused the approved answer")."""
    tp = sum(1 for g, p in zip(gold, predicted, strict=True) if g and p)
    fp = sum(1 for g, p in zip(gold, predicted, strict=True) if p and not g)
    fn = sum(1 for g, p in zip(gold, predicted, strict=True) if g and not p)
    return {"precision": ratio(tp, tp + fp), "recall": ratio(tp, tp + fn), "n": len(gold), "positives": tp + fn}
