"""The one exception type for problems the user can fix.

Anything raised as `UserError` reaches the terminal as a single paragraph and exit
code 2; anything else is a bug in tunesmith and keeps its traceback (with --debug).
"""

from __future__ import annotations


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
