"""Labels per split: their distribution, imbalance, a shift between splits, labels train never shows.

What a "label" is depends on the task: a class; each label of a multi-label row; each entity
type of a NER sentence (its B- tags after conversion to IOB2). Regression targets get a
summary (range, mean, spread) instead.
"""

from __future__ import annotations

import statistics
from collections import Counter

from tunesmith.data.doctor.examples import SplitExamples, shown_label
from tunesmith.data.doctor.findings import EXAMPLES_KEPT, Finding, agree, example
from tunesmith.tasks.tagging import detect_scheme, split_tag, to_iob2

# A train set whose commonest label is this many times its rarest is called imbalanced.
IMBALANCE_RATIO = 10.0
# Total variation distance between train's label shares and an evaluation split's that counts as a shift.
SHIFT_DISTANCE = 0.15


def label_items(split: SplitExamples, target: str, scheme: str = "iob2") -> list[list[str]]:
    """The labels each row counts towards, as strings; `target` is the task's (TaskInfo.target)."""
    if target == "label set":
        return [sorted(str(item) for item in label) for label in split.labels]
    if target == "tags":
        return [[tag[2:] for tag in _iob2(tags, scheme) if tag.startswith("B-")] for tags in split.tags or []]
    return [[str(label)] for label in split.labels]


def _iob2(tags: list[str], scheme: str) -> list[str]:
    try:
        return to_iob2(tags, scheme)
    except ValueError:  # an unknown tag or a tag of another scheme: invalid_tags reports it
        return [tag if tag == "O" else f"B-{tag.partition('-')[2]}" for tag in tags]


def ner_scheme(train: SplitExamples, configured: str) -> str:
    if configured != "auto":
        return configured
    try:
        return detect_scheme(train.tags or [])
    except ValueError:
        return "iob2"


def distribution(split: SplitExamples, target: str, scheme: str = "iob2") -> dict[str, int] | dict[str, float]:
    """Label counts (most common first), or a numeric target's summary."""
    if target == "number":
        values = [label for label in split.labels if isinstance(label, float)]
        if not values:
            return {}
        return {
            "min": min(values),
            "max": max(values),
            "mean": round(statistics.fmean(values), 4),
            "std": round(statistics.pstdev(values), 4),
        }
    counts = Counter(item for items in label_items(split, target, scheme) for item in items)
    return dict(counts.most_common())


def imbalance(train: SplitExamples, counts: dict[str, int]) -> list[Finding]:
    if len(counts) < 2:
        return []
    common, rare = max(counts, key=counts.get), min(counts, key=counts.get)
    ratio = counts[common] / max(counts[rare], 1)
    if ratio < IMBALANCE_RATIO:
        return []
    shown = ", ".join(f"{name} {count:,}" for name, count in sorted(counts.items(), key=lambda kv: kv[1])[:3])
    return [
        Finding(
            "class_imbalance",
            "warning",
            train.name,
            sum(1 for count in counts.values() if counts[common] / max(count, 1) >= IMBALANCE_RATIO),
            f"{common!r} occurs {ratio:.0f} times as often as {rare!r} ({counts[common]:,} against {counts[rare]:,}); "
            f"rarest: {shown}. Accuracy will hide the rare labels: read macro-F1 and the per-label scores "
            "(loss.class_weights, or loss.pos_weight for multilabel, weighs them up: docs/losses.md)",
        )
    ]


def shift(train_counts: dict[str, int], other: SplitExamples, counts: dict[str, int]) -> list[Finding]:
    """A label distribution in `other` unlike train's: scores there will not say how train-like data fares."""
    total_train, total_other = sum(train_counts.values()), sum(counts.values())
    if not total_train or not total_other:
        return []
    labels = set(train_counts) | set(counts)
    distance = 0.5 * sum(abs(train_counts.get(n, 0) / total_train - counts.get(n, 0) / total_other) for n in labels)
    if distance < SHIFT_DISTANCE:
        return []
    return [
        Finding(
            "label_shift",
            "warning",
            f"{other.name}/train",
            round(100 * distance),
            f"the label shares of {other.name} differ from train's by {100 * distance:.0f} points "
            "(total variation distance)",
        )
    ]


def unseen(train_items: list[list[str]], other: SplitExamples, items: list[list[str]], severity: str) -> list[Finding]:
    """Labels of an evaluation split that train never shows: the model cannot predict them."""
    known = {item for row in train_items for item in row}
    rows = [index for index, row in enumerate(items) if any(item not in known for item in row)]
    if not rows:
        return []
    missing = sorted({item for index in rows for item in items[index] if item not in known})
    return [
        Finding(
            "unseen_labels",
            severity,  # type: ignore[arg-type]
            f"{other.name}/train",
            len(rows),
            f"{agree(len(rows), f'{other.name} row', 'carries', verbs='carry')} labels train never shows "
            f"({', '.join(missing[:10])}): "
            "the model cannot learn them. Add training examples, or remove the labels",
            [
                example(other.name, other.lines[i], other.texts[i], label=shown_label(other.labels[i]))
                for i in rows[:EXAMPLES_KEPT]
            ],
        )
    ]


def short_texts(split: SplitExamples, min_characters: int) -> list[Finding]:
    """Inputs with fewer than `min_characters` visible characters: little to learn from, often debris."""
    short = [i for i, text in enumerate(split.texts) if len("".join(text.split())) < min_characters]
    if split.pairs is not None:
        short += [i for i, text in enumerate(split.pairs) if len("".join(text.split())) < min_characters]
        short = sorted(set(short))
    if not short:
        return []
    return [
        Finding(
            "short_texts",
            "info",
            split.name,
            len(short),
            f"{agree(len(short), 'input', 'has', verbs='have')} a text under {min_characters} visible characters",
            [
                example(split.name, split.lines[i], split.texts[i], label=shown_label(split.labels[i]))
                for i in short[:EXAMPLES_KEPT]
            ],
        )
    ]


def invalid_tags(split: SplitExamples, scheme: str) -> list[Finding]:
    """NER tags that break their scheme: an I- (or E-) that continues no entity, BIOES tags in IOB data."""
    bad: list[tuple[int, int, str]] = []
    for row, tags in enumerate(split.tags or []):
        open_type, closed = "", False
        for position, tag in enumerate(tags):
            try:
                prefix, kind = split_tag(tag)
            except ValueError:
                bad.append((row, position, tag))
                continue
            foreign = prefix in ("E", "S") and scheme != "bioes"
            # IOB1 starts entities with I-; IOB2 and BIOES never do.
            dangling = prefix in ("I", "E") and kind != open_type and scheme != "iob1"
            if foreign or dangling:
                bad.append((row, position, tag))
            closed = prefix in ("E", "S", "O")
            open_type = "" if closed else kind
    if not bad:
        return []
    examples = []
    for row, position, tag in bad[:EXAMPLES_KEPT]:
        before = split.tags[row][position - 1] if position else "(sentence start)"  # type: ignore[index]
        token = split.tokens[row][position] if split.tokens else ""
        # The sentence's line; in a CoNLL file the token is `position` lines further down.
        examples.append(example(split.name, split.lines[row], token, token_number=position + 1, tag=tag, after=before))
    return [
        Finding(
            "invalid_tags",
            "warning",
            split.name,
            len(bad),
            f"{agree(len(bad), 'tag', 'breaks')} {scheme.upper()} (an I- that continues no entity of its type, or a "
            "tag of another scheme); training reads such an I- as the start of an entity, as conlleval does",
            examples,
        )
    ]
