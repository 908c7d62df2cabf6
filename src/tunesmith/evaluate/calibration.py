"""Calibration of a classifier: does a prediction made with confidence p come true a share p of the time?

The expected calibration error (ECE) is the usual one (Guo et al., 2017): the confidences
(the predicted class's probability) fall into equal-width bins over [0, 1], and each bin's
|accuracy - mean confidence| is weighted by its share of the examples. The reliability
diagram (figures.reliability) draws the same bins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

BINS = 15


@dataclass(frozen=True)
class Bin:
    lower: float
    upper: float
    count: int
    confidence: float  # mean confidence of the bin's examples (nan when empty)
    accuracy: float  # share of them predicted right (nan when empty)


def reliability_bins(confidence: Sequence[float], correct: Sequence[bool], bins: int = BINS) -> list[Bin]:
    """Equal-width bins (lower, upper], the first one closed at 0."""
    confidence_array = np.asarray(confidence, dtype=float)
    correct_array = np.asarray(correct, dtype=float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    # right=True puts a confidence on an edge into the bin it closes; 0.0 would get bin -1.
    index = np.clip(np.digitize(confidence_array, edges[1:-1], right=True), 0, bins - 1)
    result = []
    for number in range(bins):
        chosen = index == number
        count = int(chosen.sum())
        result.append(
            Bin(
                float(edges[number]),
                float(edges[number + 1]),
                count,
                float(confidence_array[chosen].mean()) if count else float("nan"),
                float(correct_array[chosen].mean()) if count else float("nan"),
            )
        )
    return result


def expected_calibration_error(confidence: Sequence[float], correct: Sequence[bool], bins: int = BINS) -> float:
    total = len(confidence)
    if total == 0:
        return 0.0
    filled = [b for b in reliability_bins(confidence, correct, bins) if b.count]
    return float(sum(b.count / total * abs(b.accuracy - b.confidence) for b in filled))


def confidences(records: list[dict[str, Any]]) -> tuple[list[float], list[bool]]:
    """Each record's confidence and whether its prediction was right; empty for records without confidence."""
    kept = [record for record in records if "confidence" in record]
    return [record["confidence"] for record in kept], [record["predicted"] == record["gold"] for record in kept]


def scores(records: list[dict[str, Any]]) -> dict[str, float]:
    """{"ece": ...} for records that carry a confidence (classification), else nothing."""
    confidence, correct = confidences(records)
    return {"ece": expected_calibration_error(confidence, correct)} if confidence else {}
