"""The splits as the doctor reads them: texts, pairs and labels in forms that compare by value.

Labels are canonical so that equal labels compare equal whatever the file wrote: a class name
(`0` and `0.0` are the same class), a frozenset of names for multi-label rows, a float for
regression, a tuple of tags for NER. With `data.label_names`, integer labels become names.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunesmith.config import RunConfig
from tunesmith.tasks import TASKS
from tunesmith.tasks.vocabulary import given_names, label_name, resolve

if TYPE_CHECKING:
    from tunesmith.data.splits import LoadedData


@dataclass
class SplitExamples:
    name: str
    source: Path
    lines: list[int]
    # NER sentences are their tokens joined by spaces, so that every check reads plain strings.
    texts: list[str]
    pairs: list[str] | None
    labels: list[Hashable]
    # NER: the tags as written, before any conversion to IOB2 (invalid sequences are the point).
    tags: list[list[str]] | None = None
    tokens: list[list[str]] | None = None

    def __len__(self) -> int:
        return len(self.texts)

    def key(self, index: int) -> tuple[str, ...]:
        """What makes two examples the same input: the text, or the pair in order, with runs of
        whitespace as one space and none at the ends (the tokenizer reads them alike: SST-2's train
        sentences end in a space, its test sentences do not)."""
        if self.pairs is None:
            return (" ".join(self.texts[index].split()),)
        return (" ".join(self.texts[index].split()), " ".join(self.pairs[index].split()))


def examples_of(cfg: RunConfig, loaded: LoadedData) -> dict[str, SplitExamples]:
    """Each split of `loaded` (as `load_splits` read it) in the doctor's terms, train first."""
    token_level = TASKS[cfg.task].token_level
    # Label names map ids to names for tasks whose targets are classes (one, or a set of them).
    names = given_names(cfg.data) if TASKS[cfg.task].target in {"class", "label set"} else None
    result = {}
    for split in ("train", "validation", "test"):
        if split not in loaded.splits:
            continue
        data, source = loaded.splits[split], loaded.sources[split]
        lines = list(data["line"])
        raw = list(data["label"])
        texts = [" ".join(tokens) for tokens in data["text"]] if token_level else list(data["text"])
        pairs = list(data["text_pair"]) if "text_pair" in data.column_names else None
        labels = [canonical(cfg, value, names, source, line) for value, line in zip(raw, lines, strict=True)]
        tokens = [list(tokens) for tokens in data["text"]] if token_level else None
        tags = [list(tags) for tags in raw] if token_level else None
        result[split] = SplitExamples(split, source, lines, texts, pairs, labels, tags, tokens)
    return result


def canonical(cfg: RunConfig, value: Any, names: list[str] | None, source: Path, line: int) -> Hashable:
    """A raw label as a value that compares equal exactly when the task would read the same target."""
    target = TASKS[cfg.task].target
    if target == "number":
        try:
            number = float(value.strip() if isinstance(value, str) else value)
        except (TypeError, ValueError):
            return str(value)
        return number if math.isfinite(number) else str(value)
    if target == "tags":
        return tuple(value)
    if target == "label set":
        items = value if isinstance(value, list) else str(value).split(cfg.multilabel.separator)
        return frozenset(_name(item.strip() if isinstance(item, str) else item, names, source, line) for item in items)
    return _name(value, names, source, line)


def _name(value: Any, names: list[str] | None, source: Path, line: int) -> str:
    if names is None:
        return label_name(value, source, line)
    return names[resolve(value, names, source, line, by_index=True)]


def shown_label(label: Hashable) -> Any:
    """A canonical label as JSON can hold it: sets as sorted lists, tag tuples as one string."""
    if isinstance(label, frozenset):
        return sorted(label)
    if isinstance(label, tuple):
        return " ".join(label)
    return label
