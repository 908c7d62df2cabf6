"""Repeated inputs: duplicates and conflicting labels within a split, and inputs shared between splits.

An input is the text, or the pair in order. Overlap between train and an evaluation split is
counted exactly and after normalisation (`normalise`), which catches the same sentence
written with other case, spacing, punctuation or Unicode forms (SST-2's test set is cased
and tokenized unlike its train set). Pairs are also looked for with their sides swapped.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Hashable

from tunesmith.data.doctor.examples import SplitExamples, shown_label
from tunesmith.data.doctor.findings import EXAMPLES_KEPT, Finding, agree, counted, example

Key = tuple[str, ...]
_NOT_WORD = re.compile(r"[\W_]+")
# A near duplicate needs this many letters and digits: below it, a short phrase ("bad .") matches
# another ("bad") by being short, not by being a copy (SST-2's train set holds many phrases).
NEAR_MIN_CHARACTERS = 15


def normalise(text: str) -> str:
    """Compatibility-normalised and case-folded, every run of other characters than letters and
    digits one space (accents kept): "What's next?" and "what 's next ." read alike."""
    return " ".join(_NOT_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).split())


def _near_key(split: SplitExamples, index: int) -> tuple[str, ...] | None:
    """The normalised input, or None when it is too short to call a copy."""
    key = tuple(normalise(part) for part in split.key(index))
    letters = sum(len(part.replace(" ", "")) for part in key)
    return key if letters >= NEAR_MIN_CHARACTERS else None


def groups(split: SplitExamples, key: Callable[[int], Hashable]) -> dict[Hashable, list[int]]:
    """Row indices by key, in row order."""
    found: dict[Hashable, list[int]] = defaultdict(list)
    for index in range(len(split)):
        found[key(index)].append(index)
    return found


def duplicates(split: SplitExamples) -> list[Finding]:
    """Inputs that occur more than once in a split; those among them with different labels."""
    repeated = [rows for rows in groups(split, split.key).values() if len(rows) > 1]
    conflicting = [rows for rows in repeated if len({split.labels[row] for row in rows}) > 1]
    findings = []
    if repeated:
        extra = sum(len(rows) - 1 for rows in repeated)
        findings.append(
            Finding(
                "duplicates",
                "info",
                split.name,
                len(repeated),
                f"{agree(len(repeated), 'input', 'occurs')} more than once ({counted(extra, 'extra row')}); "
                f"{len(conflicting):,} of them with different labels",
                [_group_example(split, rows) for rows in repeated[:EXAMPLES_KEPT]],
            )
        )
    if conflicting:
        findings.append(
            Finding(
                "conflicting_labels",
                "warning",
                split.name,
                len(conflicting),
                f"{agree(len(conflicting), 'input', 'occurs')} with different labels: the model is told two things "
                "at once",
                [_group_example(split, rows) for rows in conflicting[:EXAMPLES_KEPT]],
            )
        )
    return findings


def _group_example(split: SplitExamples, rows: list[int]) -> dict:
    first = rows[0]
    return example(
        split.name,
        split.lines[first],
        _shown_input(split, first),
        lines=[split.lines[row] for row in rows[:10]],
        labels=[shown_label(split.labels[row]) for row in rows[:10]],
    )


def _shown_input(split: SplitExamples, index: int) -> str:
    if split.pairs is None:
        return split.texts[index]
    return f"{split.texts[index]} ||| {split.pairs[index]}"


def split_overlap(train: SplitExamples, other: SplitExamples) -> list[Finding]:
    """Inputs of `other` (an evaluation split) also in `train`: exactly, after normalisation, swapped."""
    exact = groups(train, train.key)
    near = groups(train, lambda i: _near_key(train, i))
    found_exact: list[tuple[int, list[int]]] = []
    found_near: list[tuple[int, list[int]]] = []
    for index in range(len(other)):
        key = other.key(index)
        if key in exact:
            found_exact.append((index, exact[key]))
        else:
            normalised = _near_key(other, index)
            if normalised is not None and normalised in near:
                found_near.append((index, near[normalised]))
    where = f"{other.name}/{train.name}"
    findings = []
    if found_exact:
        differ = sum(1 for index, rows in found_exact if other.labels[index] not in {train.labels[r] for r in rows})
        distinct = len({other.key(index) for index, _ in found_exact})
        findings.append(
            Finding(
                "split_overlap",
                "warning",
                where,
                len(found_exact),
                f"{len(found_exact):,} of {len(other):,} {other.name} rows ({counted(distinct, 'distinct input')}) "
                f"occur in {train.name} too, {differ:,} of them with another label there: their scores measure "
                "memory, not generalisation",
                [_overlap_example(train, other, index, rows) for index, rows in found_exact[:EXAMPLES_KEPT]],
            )
        )
    if found_near:
        findings.append(
            Finding(
                "near_duplicate_overlap",
                "warning",
                where,
                len(found_near),
                f"{agree(len(found_near), f'more {other.name} row', 'matches', verbs='match')} a {train.name} row "
                "once case, spacing, punctuation and Unicode forms are ignored",
                [_overlap_example(train, other, index, rows) for index, rows in found_near[:EXAMPLES_KEPT]],
            )
        )
    return findings


def _overlap_example(train: SplitExamples, other: SplitExamples, index: int, rows: list[int]) -> dict:
    shown, there = _shown_input(other, index), _shown_input(train, rows[0])
    found = example(other.name, other.lines[index], shown, label=shown_label(other.labels[index]))
    found[f"{train.name}_lines"] = [train.lines[row] for row in rows[:5]]
    found[f"{train.name}_labels"] = [shown_label(train.labels[row]) for row in rows[:5]]
    if train.key(rows[0]) != other.key(index):  # a near duplicate: show how the other side writes it
        found[f"{train.name}_text"] = there
    return found


def swapped_pairs(split: SplitExamples, other: SplitExamples | None = None) -> list[Finding]:
    """Pairs (b, a) of `other` (or of `split` itself) whose (a, b) is in `split`, with a != b."""
    if split.pairs is None:
        return []
    target = other or split
    if target.pairs is None:
        return []
    forward = groups(split, split.key)
    found = []
    for index in range(len(target)):
        first, second = target.key(index)
        # Within one split each repeated pair shows up from both sides; count it once.
        if first == second or (other is None and first > second):
            continue
        rows = forward.get((second, first))
        if rows and (other is None or (first, second) not in forward):
            found.append((index, rows))
    if not found:
        return []
    where = split.name if other is None else f"{other.name}/{split.name}"
    if other is None:
        pairs = counted(len(found), f"pair of {split.name}", f"pairs of {split.name}")
        what = f"{pairs} {'occurs' if len(found) == 1 else 'occur'} again with the sides swapped"
    else:
        what = f"{agree(len(found), f'{other.name} pair', 'occurs')} in {split.name} with the sides swapped"
    return [
        Finding(
            "swapped_pairs",
            "info" if other is None else "warning",
            where,
            len(found),
            what,
            [_overlap_example(split, target, index, rows) for index, rows in found[:EXAMPLES_KEPT]],
        )
    ]
