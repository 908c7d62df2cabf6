"""Rehearsal: how many old rows, which ones (seeded), in which steps, and the gradient they mix in."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.continual.tiny import CrossEntropy, Linear
from tunesmith.continual.rehearsal import Replay, per_step, replay_count, replay_rows, rows_for_step
from tunesmith.errors import UserError


def test_replay_count_is_a_fraction_or_a_number():
    assert replay_count(3000, 0.1) == 300
    assert replay_count(3000, 250) == 250
    assert replay_count(10, 0.01) == 1  # a fraction never rounds to nothing
    assert replay_count(10, 0) == 0
    with pytest.raises(UserError, match="asks for 20 old training rows, but the old run trained on 10"):
        replay_count(10, 20)


def test_replayed_rows_are_a_seeded_sample_without_repeats():
    rows = replay_rows(1000, 0.2, seed=42)
    assert len(rows) == 200 and len(set(rows)) == 200 and all(0 <= row < 1000 for row in rows)
    assert replay_rows(1000, 0.2, seed=42) == rows
    assert replay_rows(1000, 0.2, seed=7) != rows


def test_each_pass_over_the_steps_replays_every_row_once_in_a_new_order():
    rows = list(range(10))
    size = per_step(len(rows), steps_per_epoch=4)
    assert size == 3
    first = [rows_for_step(rows, size, step, seed=1) for step in range(4)]
    second = [rows_for_step(rows, size, step, seed=1) for step in range(4, 8)]
    assert [len(batch) for batch in first] == [3, 3, 3, 1]
    assert sorted(row for batch in first for row in batch) == rows
    assert sorted(row for batch in second for row in batch) == rows
    assert first != second
    assert [rows_for_step(rows, size, step, seed=1) for step in range(4)] == first


def test_replayed_rows_count_as_if_they_were_in_the_batch():
    torch.manual_seed(0)
    model = Linear([[0.5, -1.0], [1.5, 0.25]])
    new_x, new_y = torch.randn(3, 2), torch.tensor([0, 1, 1])
    old_x, old_y = torch.randn(2, 2), torch.tensor([1, 0])
    encoded = [{"features": old_x[i], "labels": old_y[i]} for i in range(2)]

    def collate(rows: list[dict]) -> dict:
        return {key: torch.stack([row[key] for row in rows]) for key in rows[0]}

    # The new batch's mean loss, backpropagated as the loop does; then the replay of both old rows.
    nn.functional.cross_entropy(model(new_x).logits, new_y).backward()
    replay = Replay(model, CrossEntropy(), encoded, collate, [0, 1], per_step=2, new_per_step=3, seed=0)
    replay.add_gradient(model)
    mixed = model.weight.grad.clone()
    # The mean over all five examples at once.
    model.weight.grad = None
    everything = nn.functional.cross_entropy(model(torch.cat([new_x, old_x])).logits, torch.cat([new_y, old_y]))
    everything.backward()
    torch.testing.assert_close(mixed, model.weight.grad)
    assert replay.step == 1
