"""Packing short examples into full rows, and the collators that make batches of them.

A packed row holds several examples one after another, each with positions starting again at 0,
and no attention mask: from such position ids transformers builds a block-diagonal causal mask
for SDPA and eager attention, and FlashAttention 2 runs its variable-length kernel
(`masking_utils.find_packed_sequence_indices`; tests/causal/test_packing.py checks that no attention
crosses from one example to another). Targets are shifted within each example, so that an example's
last token never learns to predict the next example's first.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import Any

import torch

IGNORE = -100


def best_fit(lengths: list[int], capacity: int) -> list[list[int]]:
    """Example indices grouped into rows of at most `capacity` tokens: longest first, each into the row it
    fills best (best-fit decreasing). Deterministic: ties go to the earlier example and the earlier row."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    rows: list[list[int]] = []
    # (space left, row number), sorted: the first entry with enough space is the best fit.
    space: list[tuple[int, int]] = []
    for index in order:
        size = min(lengths[index], capacity)
        at = bisect.bisect_left(space, (size, -1))
        if at == len(space):
            rows.append([index])
            bisect.insort(space, (capacity - size, len(rows) - 1))
            continue
        left, row = space.pop(at)
        rows[row].append(index)
        bisect.insort(space, (left - size, row))
    return rows


def pack(split: Any, capacity: int) -> Any:
    """A dataset of packed rows (input_ids, labels, position_ids, length, examples, and how many of them
    were truncated) from one of examples."""
    import datasets

    lengths = split["length"]
    ids, labels = split["input_ids"], split["labels"]
    truncated = split["truncated"] if "truncated" in split.column_names else [0] * len(split)
    packed: dict[str, list] = {"input_ids": [], "labels": [], "position_ids": [], "length": [], "examples": [],
                               "truncated": []}  # fmt: skip
    for row in best_fit(lengths, capacity):
        packed["input_ids"].append([token for index in row for token in ids[index]])
        packed["labels"].append([token for index in row for token in labels[index]])
        packed["position_ids"].append([position for index in row for position in range(lengths[index])])
        packed["length"].append(sum(lengths[index] for index in row))
        packed["examples"].append(len(row))
        packed["truncated"].append(sum(truncated[index] for index in row))
    return datasets.Dataset.from_dict(packed)


def next_token_targets(labels: list[int], positions: list[int] | None) -> list[int]:
    """labels[i + 1] for each position i of the same example, IGNORE at each example's last token."""
    targets = labels[1:] + [IGNORE]
    if positions is not None:
        for index in range(len(labels) - 1):
            if positions[index + 1] == 0:  # the next token starts another example
                targets[index] = IGNORE
    return targets


def collator(pad_id: int) -> Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]]:
    """Batches padded on the right; next-token targets. Packed rows (with position_ids) get no attention
    mask, their padding its own positions from 0 (a block of its own, with no targets)."""

    def collate(rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        width = max(len(row["input_ids"]) for row in rows)
        packed = "position_ids" in rows[0]
        batch: dict[str, list] = {"input_ids": [], "labels": []}
        batch["position_ids" if packed else "attention_mask"] = []
        for row in rows:
            ids, pad = list(row["input_ids"]), width - len(row["input_ids"])
            positions = list(row["position_ids"]) if packed else None
            batch["input_ids"].append(ids + [pad_id] * pad)
            batch["labels"].append(next_token_targets(list(row["labels"]), positions) + [IGNORE] * pad)
            if packed:
                batch["position_ids"].append(positions + list(range(pad)))
            else:
                batch["attention_mask"].append([1] * len(ids) + [0] * pad)
        return {name: torch.tensor(values, dtype=torch.long) for name, values in batch.items()}

    return collate
