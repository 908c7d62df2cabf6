"""New training rows from the training split, as `augmentation:` in the config says (docs/augmentation.md).

The split comes back as it was, followed by the new rows. Copy c of row i draws everything from
its own generator, seeded with (seed, i, c): the rows are the same in every run with that seed,
whatever the order they are made in. A copy that comes out the same as its row is left out
(it adds nothing but weight). Every other column (labels, the source line, NER's context) is the
row's own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import datasets
import numpy as np

from tunesmith.data.augment import text
from tunesmith.data.augment.entities import mention_pool, replace_entities
from tunesmith.data.augment.text import Synonyms

TEXT_OPERATIONS = ("swap", "delete", "insert", "synonym", "cutoff")
# The operations that need a lexicon of synonyms.
LEXICAL_OPERATIONS = ("insert", "synonym")


@dataclass
class Plan:
    """What to make: the operations (one drawn per new row), EDA's alpha, new rows per row, the seed."""

    operations: list[str]
    alpha: float
    copies: int
    seed: int
    # Sentence pairs: edit "both" texts (each on its own) or only the "first".
    pair_texts: str = "both"


def edit_words(
    operation: str, words: list[str], alpha: float, rng: np.random.Generator, synonyms: Synonyms | None
) -> list[str]:
    if operation == "swap":
        return text.random_swap(words, alpha, rng)
    if operation == "delete":
        return text.random_deletion(words, alpha, rng)
    if operation == "cutoff":
        return text.span_cutoff(words, alpha, rng)
    if synonyms is None:
        raise ValueError(f"operation {operation} needs synonyms")
    if operation == "synonym":
        return text.synonym_replacement(words, alpha, rng, synonyms)
    if operation == "insert":
        return text.random_insertion(words, alpha, rng, synonyms)
    raise ValueError(f"unknown text operation {operation!r}")


def augment_texts(train: datasets.Dataset, plan: Plan, synonyms: Synonyms | None = None) -> datasets.Dataset:
    """`train` (columns text, optionally text_pair) followed by its edited copies; words are split on whitespace."""
    columns = ["text", "text_pair"] if "text_pair" in train.column_names else ["text"]
    if plan.pair_texts == "first":
        columns = ["text"]

    def edit(row: dict, rng: np.random.Generator) -> dict | None:
        operation = plan.operations[int(rng.integers(len(plan.operations)))]
        edited = {
            column: " ".join(edit_words(operation, row[column].split(), plan.alpha, rng, synonyms))
            for column in columns
        }
        return edited if any(edited[column] != " ".join(row[column].split()) for column in columns) else None

    return augment(train, plan, edit)


def augment_entities(train: datasets.Dataset, plan: Plan, tag_names: list[str]) -> datasets.Dataset:
    """NER `train` (text: tokens, labels: IOB2 tag ids into `tag_names`) followed by copies whose mentions
    are replaced by other training mentions of the same type."""
    ids = {name: index for index, name in enumerate(tag_names)}

    def tags_of(labels: list[int]) -> list[str]:
        return [tag_names[label] for label in labels]

    pool = mention_pool(
        (tokens, tags_of(labels)) for tokens, labels in zip(train["text"], train["labels"], strict=True)
    )

    def edit(row: dict, rng: np.random.Generator) -> dict | None:
        tokens, tags = replace_entities(row["text"], tags_of(row["labels"]), pool, plan.alpha, rng)
        if tokens == row["text"]:
            return None
        return {"text": tokens, "labels": [ids[tag] for tag in tags]}

    return augment(train, plan, edit)


def augment(
    train: datasets.Dataset, plan: Plan, edit: Callable[[dict, np.random.Generator], dict | None]
) -> datasets.Dataset:
    """`train` followed by `plan.copies` edits of each row (those that changed it)."""
    new: dict[str, list] = {column: [] for column in train.column_names}
    for index, row in enumerate(train):
        for copy in range(plan.copies):
            # numpy seeds are non-negative; a negative training.seed still gives its own stream.
            changed = edit(row, np.random.default_rng([plan.seed % 2**63, index, copy]))
            if changed is None:
                continue
            for column in train.column_names:
                new[column].append(changed.get(column, row[column]))
    if not new[train.column_names[0]]:
        return train
    return datasets.concatenate_datasets([train, datasets.Dataset.from_dict(new, features=train.features)])
