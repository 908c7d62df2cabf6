"""Token lengths per split, as the model's tokenizer counts them, and how many inputs max_length cuts."""

from __future__ import annotations

from typing import Any

import numpy as np

from tunesmith.data.doctor.examples import SplitExamples
from tunesmith.data.doctor.findings import EXAMPLES_KEPT, Finding, counted, example

# Tokenized in chunks: a fast tokenizer is quickest on large batches, and memory stays bounded.
_CHUNK = 2048
# A split is measured on at most this many rows (seeded sample): percentiles settle long before.
MEASURED_ROWS = 50_000


def token_lengths(split: SplitExamples, tokenizer: Any) -> tuple[np.ndarray, np.ndarray]:
    """Tokens per input, special tokens included, without truncation, and the rows measured (a seeded
    sample when the split is large)."""
    rows = np.arange(len(split))
    if len(rows) > MEASURED_ROWS:
        rows = np.sort(np.random.default_rng(0).choice(rows, MEASURED_ROWS, replace=False))
    lengths = []
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start : start + _CHUNK]
        if split.tokens is not None:
            first: list[Any] = [split.tokens[i] for i in chunk]
            encoded = tokenizer(first, is_split_into_words=True, truncation=False, verbose=False)["input_ids"]
        else:
            first = [split.texts[i] for i in chunk]
            second = [split.pairs[i] for i in chunk] if split.pairs is not None else None
            encoded = tokenizer(first, second, truncation=False, verbose=False)["input_ids"]
        lengths.extend(len(ids) for ids in encoded)
    return np.asarray(lengths, dtype=np.int64), rows


def summary(lengths: np.ndarray, max_length: int, total: int) -> dict[str, Any]:
    if not len(lengths):
        return {}
    cut = int((lengths > max_length).sum())
    return {
        "measured_rows": int(len(lengths)),
        "rows": total,
        "mean": round(float(lengths.mean()), 1),
        **{f"p{q}": int(np.percentile(lengths, q)) for q in (50, 90, 95, 99)},
        "max": int(lengths.max()),
        "max_length": max_length,
        "cut": cut,
        "cut_share": round(cut / len(lengths), 4),
    }


def truncated(split: SplitExamples, lengths: np.ndarray, rows: np.ndarray, max_length: int) -> list[Finding]:
    over = [(int(row), int(length)) for row, length in zip(rows, lengths, strict=True) if length > max_length]
    if not over:
        return []
    share = len(over) / len(lengths)
    sampled = "" if len(lengths) == len(split) else f" (in a sample of {len(lengths):,})"
    return [
        Finding(
            "truncated",
            "warning" if share >= 0.05 else "info",
            split.name,
            len(over),
            f"{counted(len(over), 'input')} ({100 * share:.1f}%{sampled}) {'is' if len(over) == 1 else 'are'} longer "
            "than max_length "
            f"{max_length} tokens: training cuts off their end (training.truncation_side). Raise training.max_length "
            "if the end matters",
            [
                example(split.name, split.lines[row], split.texts[row], tokens=length)
                for row, length in over[:EXAMPLES_KEPT]
            ],
        )
    ]
