"""k examples per class, drawn with a seed."""

from __future__ import annotations

from collections import Counter

import pytest

from tunesmith.data.sampling import per_class_indices
from tunesmith.errors import UserError

LABELS = ["a"] * 10 + ["b"] * 7 + ["c"] * 12


def test_k_of_each_label_the_same_for_a_seed_and_other_for_another() -> None:
    chosen = per_class_indices(LABELS, 5, seed=1)
    assert Counter(LABELS[i] for i in chosen) == {"a": 5, "b": 5, "c": 5}
    assert len(set(chosen)) == 15
    assert per_class_indices(LABELS, 5, seed=1) == chosen
    assert per_class_indices(LABELS, 5, seed=2) != chosen


def test_the_draw_does_not_depend_on_the_order_labels_first_appear() -> None:
    reordered = LABELS[10:17] + LABELS[:10] + LABELS[17:]
    moved = {i: i + 7 if i < 10 else (i - 10 if i < 17 else i) for i in range(len(LABELS))}
    assert sorted(moved[i] for i in per_class_indices(LABELS, 3, 0)) == per_class_indices(reordered, 3, 0)


def test_a_label_with_too_few_rows_is_named() -> None:
    with pytest.raises(UserError, match="train.csv: data.shots_per_class is 8.*'b' \\(7\\)"):
        per_class_indices(LABELS, 8, 0, "train.csv")
