"""Few-shot sampling: k training examples per class, drawn with a seed.

The same seed draws the same examples whatever else the config says, so that methods compared at
k shots and seed s see the same examples.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tunesmith.errors import UserError

if TYPE_CHECKING:
    import datasets


def per_class_indices(labels: list[Any], shots: int, seed: int, source: Path | str = "train") -> list[int]:
    """Indices of `shots` rows of each label (labels compared as written), sorted; every label must have that many."""
    groups: dict[str, list[int]] = defaultdict(list)
    for index, label in enumerate(labels):
        groups[str(label)].append(index)
    short = {label: len(rows) for label, rows in groups.items() if len(rows) < shots}
    if short:
        shown = ", ".join(f"{label!r} ({count})" for label, count in sorted(short.items())[:5])
        raise UserError(
            f"{source}: data.shots_per_class is {shots}, but some labels have fewer training rows: {shown}. "
            "Lower data.shots_per_class, or add examples of those labels."
        )
    generator = np.random.default_rng(seed)
    chosen: list[int] = []
    # Sorted labels: the draw must not depend on the order in which labels first appear.
    for label in sorted(groups):
        chosen.extend(int(i) for i in generator.choice(groups[label], size=shots, replace=False))
    return sorted(chosen)


def sample_per_class(train: datasets.Dataset, shots: int, seed: int, source: Path | str = "train") -> datasets.Dataset:
    return train.select(per_class_indices(list(train["label"]), shots, seed, source))
