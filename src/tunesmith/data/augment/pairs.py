"""Pair-order augmentation: training on both orders of a pair, and scoring in both."""

from __future__ import annotations

import datasets


def swap_pairs(train: datasets.Dataset) -> datasets.Dataset:
    """The pairs as given, followed by each pair with its two texts swapped (same label, same line).

    For symmetric tasks a cross-encoder should not depend on which text comes first; showing it
    both orders teaches that, and doubles a small training set.
    """
    return datasets.concatenate_datasets([train, swapped(train)])


def swapped(split: datasets.Dataset) -> datasets.Dataset:
    """Every pair with its two texts swapped, in the same row order."""
    return split.rename_columns({"text": "text_pair", "text_pair": "text"}).select_columns(split.column_names)
