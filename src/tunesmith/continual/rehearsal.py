"""Rehearsal: a seeded sample of the old training rows, mixed into the new run's steps.

Each optimizer step takes the next `per_step` replayed rows (a new seeded order each pass over them), so that
one pass over the new data is about one pass over the replayed rows. Their loss goes through the old task's head
and counts per example as a new example does: the step's gradient becomes (B * g_new + r * g_old) / (B + r) for B
new and r old examples, as if the old rows had been in the batch.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from tunesmith.errors import UserError
from tunesmith.tasks.protocol import Task


def replay_count(old_rows: int, replay: float) -> int:
    """The old rows `continual.replay` asks for: a fraction below 1 of them (rounded, at least one), or a number."""
    if replay <= 0:
        return 0
    if replay < 1:
        return max(1, round(replay * old_rows))
    if replay > old_rows:
        raise UserError(
            f"continual.replay asks for {int(replay):,} old training rows, but the old run trained on {old_rows:,}. "
            "Give at most that many, or a fraction below 1."
        )
    return int(replay)


def replay_rows(old_rows: int, replay: float, seed: int) -> list[int]:
    """The replayed rows: indices into the old training split, a seeded sample without repeats."""
    return random.Random(seed).sample(range(old_rows), replay_count(old_rows, replay))


def rows_for_step(rows: list[int], per_step: int, step: int, seed: int) -> list[int]:
    """The replayed rows of optimizer step `step` (from 0): the next `per_step` of a seeded order of `rows`,
    reshuffled on each pass over them; a batch that crosses a pass's end is cut there."""
    if not rows:
        return []
    passes = math.ceil(len(rows) / per_step)
    pass_index, within = divmod(step, passes)
    order = list(rows)
    random.Random(seed * 1_000_003 + pass_index).shuffle(order)
    return order[within * per_step : (within + 1) * per_step]


@dataclass
class Replay:
    """The old examples of each step, and the gradient they add (see the module's docstring)."""

    model: nn.Module
    task: Task
    # The tokenized old training rows (model columns only, train/batching.py `model_columns`), indexed by `rows`.
    encoded: Any
    collate: Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]]
    rows: list[int]
    per_step: int
    # New examples per optimizer step (batch size x accumulation x processes).
    new_per_step: int
    seed: int
    step: int = 0
    # The run's mixed precision for the old examples' forward (Accelerate's `autocast`).
    autocast: Callable[[], AbstractContextManager[Any]] = contextlib.nullcontext

    def add_gradient(self, new_model: nn.Module, scale: float = 1.0) -> None:
        """Mix this step's old rows into `new_model`'s gradient; `scale`: the factor the gradients are scaled by."""
        chosen = rows_for_step(self.rows, self.per_step, self.step, self.seed)
        self.step += 1
        if not chosen:
            return
        share = len(chosen) / (self.new_per_step + len(chosen))
        with torch.no_grad():
            for parameter in new_model.parameters():
                if parameter.grad is not None:
                    parameter.grad.mul_(1 - share)
        batch = self.collate([self.encoded[row] for row in chosen])
        device = next(self.model.parameters()).device
        batch = {key: value.to(device) for key, value in batch.items()}
        labels = batch.pop("labels")
        self.model.train()
        with self.autocast():
            sums, counts = self.task.loss(self.model(**batch).logits, labels)
        (sums.sum() / counts.sum().clamp(min=1) * share * scale).backward()


def per_step(replayed: int, steps_per_epoch: int) -> int:
    """Replayed rows per optimizer step, so that one epoch passes once over them."""
    return max(1, math.ceil(replayed / max(steps_per_epoch, 1)))
