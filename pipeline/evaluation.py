"""Exact evaluation metrics from (score, label) pairs, for the learner and the benchmarks.

>>> auc([0.1, 0.4, 0.35, 0.8], [False, False, True, True])
0.75
"""

from __future__ import annotations

import math

__all__ = ["auc", "average_precision", "calibration_error", "f1_at", "log_loss"]


def auc(scores: list[float], labels: list[bool]) -> float:
    """ROC-AUC by ranks, ties averaged.

    >>> auc([0.1, 0.4, 0.35, 0.8], [False, False, True, True])
    0.75
    """
    pairs = sorted(zip(scores, labels, strict=True))
    pos = sum(labels)
    neg = len(labels) - pos
    if not pos or not neg:
        return float("nan")
    rank_sum, i = 0.0, 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        avg_rank = (i + j + 1) / 2  # ranks are 1-based
        rank_sum += avg_rank * sum(1 for k in range(i, j) if pairs[k][1])
        i = j
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg)


def average_precision(scores: list[float], labels: list[bool]) -> float:
    """PR-AUC as average precision (step-wise), ties handled as one threshold."""
    pos = sum(labels)
    if not pos:
        return float("nan")
    pairs = sorted(zip(scores, labels, strict=True), key=lambda p: -p[0])
    ap, tp, seen, i = 0.0, 0, 0, 0
    while i < len(pairs):
        j, new_tp = i, 0
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            new_tp += pairs[j][1]
            j += 1
        tp, seen = tp + new_tp, seen + (j - i)
        ap += (new_tp / pos) * (tp / seen)
        i = j
    return ap


def log_loss(scores: list[float], labels: list[bool]) -> float:
    eps = 1e-6
    return -sum(
        math.log(min(max(p if y else 1 - p, eps), 1.0)) for p, y in zip(scores, labels, strict=True)
    ) / max(1, len(labels))


def calibration_error(scores: list[float], labels: list[bool], bins: int = 10) -> float:
    """Expected calibration error: over ``bins`` equal-width score bins, the mean gap
    between the mean score and the share of positives, weighted by the bin's size.

    >>> calibration_error([0.1, 0.1, 0.9, 0.9], [False, False, True, True])
    0.1
    """
    if not labels:
        return float("nan")
    sums: dict[int, list[float]] = {}
    for p, y in zip(scores, labels, strict=True):
        b = sums.setdefault(min(int(p * bins), bins - 1), [0.0, 0.0, 0.0])
        b[0], b[1], b[2] = b[0] + p, b[1] + y, b[2] + 1
    gap = sum(abs(b[0] - b[1]) for b in sums.values())  # = sum of n * |mean p - rate|
    return round(gap / len(labels), 12)


def f1_at(scores: list[float], labels: list[bool], threshold: float = 0.5) -> float:
    tp = sum(1 for p, y in zip(scores, labels, strict=True) if p >= threshold and y)
    fp = sum(1 for p, y in zip(scores, labels, strict=True) if p >= threshold and not y)
    fn = sum(1 for p, y in zip(scores, labels, strict=True) if p < threshold and y)
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0
