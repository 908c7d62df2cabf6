"""Label names shared by the tasks that predict named labels (single- and multi-label).

Labels arrive as names or integers. With `data.label_names` given, an integer that is
not itself a name is an index into that list (GoEmotions writes "27" for "neutral").
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.config import DataConfig
from tunesmith.errors import UserError, brief, json_type, where


def label_name(value: Any, source: Path, line: int) -> str:
    """Canonical name of a raw label: strings stripped, integral numbers as integers."""
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, float):
        if not value.is_integer():
            raise UserError(
                f"{where(source, line)}: label {value!r} is a fraction. Classification labels are "
                "names or whole numbers; a numeric target needs `task: regression`."
            )
        value = int(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, str):
        return value.strip()
    raise UserError(f"{where(source, line)}: label {brief(value)} is {json_type(value)}; use a name or a whole number.")


def refuse_fractions(values: list[Any], lines: list[int], source: Path) -> None:
    """Refuse a label column of numbers with fractions ("0.5", "3.25"): a regression target, not classes.

    Numbers read from CSV or TSV are strings, so label_name would take each as a class name.
    """
    fraction = None
    for value, line in zip(values, lines, strict=True):
        if isinstance(value, bool):
            return
        try:
            number = float(value)
        except (TypeError, ValueError):
            return  # a name among the labels: they are classes after all
        if not math.isfinite(number):
            return
        if fraction is None and not number.is_integer():
            fraction = (value, line)
    if fraction is not None:
        value, line = fraction
        raise UserError(
            f"{where(source, line)}: label {brief(value)} is a fraction, and every label is a number, so "
            "this looks like a numeric target. Classification labels are names or whole numbers; for numbers on "
            "a scale use `task: regression` (--task regression)."
        )


def given_names(cfg: DataConfig) -> list[str] | None:
    """`data.label_names` as a list: given inline, or read from a file of one name per line."""
    given = cfg.label_names
    if given is None:
        return None
    if isinstance(given, Path):
        if not given.is_file():
            raise UserError(
                f"data.label_names: {given} is not a file. Give a file with one label name per line, or a list."
            )
        given = [line.strip() for line in given.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
    names = [str(name).strip() for name in given]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if len(names) < 2 or duplicates:
        problem = f"names {', '.join(duplicates)} twice" if duplicates else "fewer than two names"
        raise UserError(f"data.label_names lists {problem}. List each label once, at least two.")
    return names


def resolve(value: Any, names: list[str], source: Path, line: int, by_index: bool) -> int:
    """The class id of a raw label; unknown labels are an error naming the line.

    `by_index` (names given in data.label_names) also accepts an integer position in `names`.
    """
    name = label_name(value, source, line)
    ids = {known: index for index, known in enumerate(names)}
    if name in ids:
        return ids[name]
    if by_index and _is_integer(name) and 0 <= int(name) < len(names):
        return int(name)
    shown = ", ".join(names[:20]) + (" ..." if len(names) > 20 else "")
    if by_index:
        raise UserError(
            f"{where(source, line)}: label {name!r} is neither a name in data.label_names nor a position "
            f"in it (0-{len(names) - 1}; names: {shown}). Fix the label or the list."
        )
    raise UserError(
        f"{where(source, line)}: label {name!r} never appears in the training data (training labels: {shown}). "
        "Fix the label, or add training examples for it."
    )


def sorted_names(names: set[str]) -> list[str]:
    """Numerically when every name is an integer, else alphabetically."""
    if all(_is_integer(name) for name in names):
        return sorted(names, key=int)
    return sorted(names)


def _is_integer(name: str) -> bool:
    return name.lstrip("-").isdigit()
