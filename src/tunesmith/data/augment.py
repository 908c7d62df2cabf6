"""Training-set augmentations: each takes the encoded training split and returns a larger one."""

from __future__ import annotations

import datasets


def swap_pairs(train: datasets.Dataset) -> datasets.Dataset:
    """The pairs as given, followed by each pair with its two texts swapped (same label, same line).

    For symmetric tasks a cross-encoder should not depend on which text comes first; showing it
    both orders teaches that, and doubles a small training set.
    """
    swapped = train.rename_columns({"text": "text_pair", "text_pair": "text"}).select_columns(train.column_names)
    return datasets.concatenate_datasets([train, swapped])
