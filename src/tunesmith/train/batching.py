"""Batches with little padding: length-grouped shuffling for training, sorted for evaluation.

Padding is dynamic (to the longest sequence of each batch), so the order of examples
decides how much compute is wasted on pad tokens. Grouping by length inside shuffled
"mega-batches" keeps most of the randomness of a plain shuffle while making the
batches nearly uniform in length.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import datasets
import torch
from torch.utils.data import DataLoader, Sampler

# position_ids: packed rows of a causal task, whose positions start again with each example.
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "position_ids")
# What a pretraining collator reads besides the inputs: the tokens never to mask, and each token's word.
COLLATOR_INPUTS = ("special_tokens_mask", "word_numbers")
# How many batches one mega-batch holds before it is sorted by length.
MEGA_BATCH_FACTOR = 50


class LengthGroupedBatchSampler(Sampler[list[int]]):
    """Seeded shuffle, sorted by length within mega-batches, then the batches shuffled, the longest first.

    The batches are global: under several processes Accelerate splits each one among them
    (`split_batches`), so the examples that form one optimizer step do not depend on the
    process count. A short batch comes last, because a split drops short batches elsewhere.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int, group_by_length: bool = True):
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.group_by_length = group_by_length
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(len(self.lengths), generator=generator).tolist()
        if not self.group_by_length:
            yield from self._chunks(order)
            return
        mega = self.batch_size * MEGA_BATCH_FACTOR
        batches = []
        for start in range(0, len(order), mega):
            group = sorted(order[start : start + mega], key=lambda i: -self.lengths[i])
            batches.extend(self._chunks(group))
        short = [batch for batch in batches if len(batch) < self.batch_size]
        full = [batch for batch in batches if len(batch) == self.batch_size]
        shuffled = [full[index] for index in torch.randperm(len(full), generator=generator).tolist()]
        if shuffled:
            # The full batch with the longest example first (each batch starts with its longest;
            # only a tiny last mega-batch could leave the overall longest in the short batch): a run
            # that runs out of memory does so at once, and the largest activations claim their
            # memory before smaller ones can fragment it.
            longest = max(range(len(shuffled)), key=lambda b: self.lengths[shuffled[b][0]])
            shuffled[0], shuffled[longest] = shuffled[longest], shuffled[0]
        yield from shuffled
        yield from short

    def _chunks(self, indices: list[int]) -> list[list[int]]:
        return [indices[i : i + self.batch_size] for i in range(0, len(indices), self.batch_size)]


def model_columns(split: datasets.Dataset) -> datasets.Dataset:
    """Only what the model, the collator and the loss read: token ids and the target."""
    keep = [name for name in (*MODEL_INPUTS, *COLLATOR_INPUTS, "labels") if name in split.column_names]
    return split.select_columns(keep)


Collator = Callable[[list[dict[str, Any]]], dict[str, Any]]


def train_loader(
    split: datasets.Dataset,
    collator: Collator,
    batch_size: int,
    seed: int,
    group_by_length: bool,
    processes: int = 1,
) -> tuple[DataLoader, LengthGroupedBatchSampler]:
    """Global batches of `batch_size` examples per process, for Accelerate to split among them."""
    sampler = LengthGroupedBatchSampler(split["length"], batch_size * processes, seed, group_by_length)
    loader = DataLoader(model_columns(split), batch_sampler=sampler, collate_fn=collator)
    return loader, sampler


def eval_loader(
    split: datasets.Dataset,
    collator: Collator,
    batch_size: int,
    processes: int = 1,
    swapped: datasets.Dataset | None = None,
) -> DataLoader:
    """Longest first, so padding is minimal and an out-of-memory error shows up at once.

    Like training batches, the batches are global (`batch_size` per process) and split by Accelerate.
    With `swapped` (the same pairs in the other order, row for row) each batch is a tuple of
    the two orders' batches, to be averaged (`data.average_pair_orders`).
    """
    order = evaluation_order(split)
    if swapped is None:
        return DataLoader(model_columns(split), batch_size=batch_size * processes, sampler=order, collate_fn=collator)
    if len(swapped) != len(split):
        raise ValueError(f"{len(split)} pairs but {len(swapped)} swapped ones: they must match row for row")

    def collate_both(rows: list[tuple[dict[str, Any], dict[str, Any]]]) -> tuple[dict[str, Any], dict[str, Any]]:
        return collator([given for given, _ in rows]), collator([other for _, other in rows])

    return DataLoader(
        BothOrders(model_columns(split), model_columns(swapped)),
        batch_size=batch_size * processes,
        sampler=order,
        collate_fn=collate_both,
    )


def evaluation_order(split: datasets.Dataset) -> list[int] | None:
    """The rows in the order `eval_loader` batches them (None: as they stand), longest first."""
    if "length" not in split.column_names:
        return None
    lengths = split["length"]
    return sorted(range(len(lengths)), key=lambda i: -lengths[i])


class BothOrders(torch.utils.data.Dataset):
    """Row i of a split of pairs together with row i of the same pairs swapped."""

    def __init__(self, given: datasets.Dataset, swapped: datasets.Dataset):
        self.given, self.swapped = given, swapped

    def __len__(self) -> int:
        return len(self.given)

    def __getitem__(self, index: int) -> tuple[dict[str, Any], dict[str, Any]]:
        return self.given[index], self.swapped[index]
