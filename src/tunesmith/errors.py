"""The one exception type for problems the user can fix.

Anything raised as `UserError` reaches the terminal as a single paragraph and exit
code 2; anything else is a bug in tunesmith and keeps its traceback (with --debug).
"""

from __future__ import annotations

import reprlib
from typing import Any


class UserError(Exception):
    """Bad input: a message that names the file, line or field and says how to fix it."""

    exit_code = 2


def where(path: object, line: int | None = None, column: str | None = None) -> str:
    """Format a location as 'file, line N, column "x"' for error messages."""
    parts = [str(path)]
    if line is not None:
        parts.append(f"line {line}")
    if column is not None:
        parts.append(f'column "{column}"')
    return ", ".join(parts)


def brief(value: Any) -> str:
    """repr() of a value from the user's input, cut short (and cheap to make, however big the value).

    A 5 MB header line or a YAML alias bomb must not become a 5 MB (or endless) message.
    """
    shortener = reprlib.Repr()  # keyword arguments only from Python 3.12
    shortener.maxstring = shortener.maxother = 80
    shortener.maxlevel, shortener.maxlist, shortener.maxdict = 2, 5, 5
    return shortener.repr(value)


def json_type(value: Any) -> str:
    """The JSON name of a parsed value's type, with its article: "a string", "an object" ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    names = {str: "a string", dict: "an object", list: "a list", bytes: "bytes"}
    return names.get(type(value), f"a {type(value).__name__}")
