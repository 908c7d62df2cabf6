"""Latency and throughput of a predictor on real texts, end to end: tokenize, run, decode.

The figures are of `Predictor.predict`, the call a user or the server makes, so that
tokenization and decoding count as they do in use. One untimed call warms each batch size up.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from tunesmith.predictor import Predictor

# How many calls at batch 1, and how many batches of 32, are timed: seconds, not minutes, on 2 cores.
SINGLE_CALLS = 64
BATCHES = 8


def measure(
    predictor: Predictor, texts: list[str], pairs: list[str] | None, batch_sizes: tuple[int, ...] = (1, 32)
) -> dict[str, dict[str, float]]:
    """{"batch_N": {p50_ms, p95_ms, texts_per_s, calls}} for each batch size."""
    return {f"batch_{size}": _at(predictor, texts, pairs, size) for size in batch_sizes}


def _at(predictor: Predictor, texts: list[str], pairs: list[str] | None, size: int) -> dict[str, float]:
    calls = SINGLE_CALLS if size == 1 else BATCHES
    chunks = [(start * size) % max(len(texts) - size + 1, 1) for start in range(calls + 1)]
    durations = []
    for index, start in enumerate(chunks):
        chosen = texts[start : start + size]
        chosen_pairs = pairs[start : start + size] if pairs is not None else None
        began = time.perf_counter()
        predictor.predict(chosen, chosen_pairs, batch_size=size)
        if index:  # the first call warms up
            durations.append(time.perf_counter() - began)
    taken = np.array(durations)
    texts_timed = sum(len(texts[start : start + size]) for start in chunks[1:])
    return {
        "p50_ms": round(float(np.percentile(taken, 50)) * 1000, 3),
        "p95_ms": round(float(np.percentile(taken, 95)) * 1000, 3),
        "texts_per_s": round(texts_timed / float(taken.sum()), 2),
        "calls": len(durations),
    }


def raw_texts(labelled: Any) -> tuple[list[str], list[str] | None]:
    """The split's texts as a user would send them: a tagger's token lists joined by spaces."""
    texts = [text if isinstance(text, str) else " ".join(text) for text in labelled["text"]]
    pairs = list(labelled["text_pair"]) if "text_pair" in labelled.column_names else None
    return texts, pairs
