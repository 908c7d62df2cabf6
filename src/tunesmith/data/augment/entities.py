"""Entity-aware replacement for NER (mention replacement, Dai & Adel 2020): an entity mention is
replaced by another mention of the same type seen in the training set, and the tags are written
again in IOB2 for the new mention's length, so tokens and tags stay one to one."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from seqeval.metrics.sequence_labeling import get_entities

from tunesmith.data.augment.text import edit_count

Mention = tuple[str, ...]


@dataclass
class MentionPool:
    """Each entity type's distinct mentions, sorted (so that a seeded draw is reproducible), and their positions."""

    mentions: dict[str, list[Mention]]

    def __post_init__(self) -> None:
        self.positions = {kind: {m: i for i, m in enumerate(ms)} for kind, ms in self.mentions.items()}

    def has_other(self, kind: str, mention: Mention) -> bool:
        return len(self.mentions.get(kind, [])) - (mention in self.positions.get(kind, {})) > 0

    def draw_other(self, kind: str, mention: Mention, rng: np.random.Generator) -> Mention:
        """A uniformly drawn mention of `kind` other than `mention` (which has_other says exists)."""
        mentions, own = self.mentions[kind], self.positions[kind].get(mention)
        index = int(rng.integers(len(mentions) - (own is not None)))
        # Skipping over the mention's own position draws uniformly among the others without listing them.
        return mentions[index + 1 if own is not None and index >= own else index]


def mention_pool(sentences: Iterable[tuple[list[str], list[str]]]) -> MentionPool:
    """The mentions of IOB2-tagged sentences (tokens, tags), per entity type."""
    pool: dict[str, set[Mention]] = {}
    for tokens, tags in sentences:
        for kind, start, end in get_entities(list(tags)):
            pool.setdefault(kind, set()).add(tuple(tokens[start : end + 1]))
    return MentionPool({kind: sorted(mentions) for kind, mentions in sorted(pool.items())})


def replace_entities(
    tokens: list[str], tags: list[str], pool: MentionPool, alpha: float, rng: np.random.Generator
) -> tuple[list[str], list[str]]:
    """max(1, round(alpha * mentions)) of the sentence's mentions that have an alternative, each replaced
    by a random other mention of its type; the tokens and IOB2 tags of everything else as they were."""
    spans = get_entities(list(tags))
    replaceable = [
        i for i, (kind, start, end) in enumerate(spans) if pool.has_other(kind, tuple(tokens[start : end + 1]))
    ]
    if not replaceable:
        return list(tokens), list(tags)
    count = min(edit_count(alpha, len(spans)), len(replaceable))
    chosen = {int(i) for i in rng.choice(replaceable, size=count, replace=False)}
    new_tokens: list[str] = []
    new_tags: list[str] = []
    position = 0
    for i, (kind, start, end) in enumerate(spans):
        if i not in chosen:
            continue
        new_tokens += tokens[position:start]
        new_tags += tags[position:start]
        mention = pool.draw_other(kind, tuple(tokens[start : end + 1]), rng)
        new_tokens += mention
        new_tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(mention) - 1)
        position = end + 1
    return new_tokens + tokens[position:], new_tags + tags[position:]
