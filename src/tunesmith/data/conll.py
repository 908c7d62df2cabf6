"""Read CoNLL column files (one token per line, blank lines between sentences) into a Table.

Every problem becomes a UserError naming the file and line.
"""

from __future__ import annotations

import re
from pathlib import Path

from tunesmith.data.readers import Table, check_exists, check_text_bytes
from tunesmith.errors import UserError, where

DOCSTART = "-DOCSTART-"

# Only ASCII spaces and tabs separate fields: str.split() would also split on a no-break or
# ideographic space, which can be a token in its own right.
_FIELD_SEPARATOR = re.compile(r"[ \t]+")
_DIGITS = "0123456789"


def read_conll(path: Path, tag_column: int = -1, strip_position_digits: bool = False) -> Table:
    """Sentences of a CoNLL file as columns "tokens" and "tags" (one list of strings per sentence).

    The token is the first field and the tag the field at `tag_column` (Python indexing: -1 is
    the last). Fields are separated by runs of spaces or tabs; sentences by blank lines, and
    `-DOCSTART-` lines are skipped (they also end a sentence and start a document: column
    "document" numbers each sentence's document, 0 before the first such line). `lines[k]` is the 1-based line
    of sentence k's first token; a sentence's tokens are on consecutive lines, so token i of
    sentence k is on line `lines[k] + i`.

    `strip_position_digits` removes the in-word position that Weibo NER appends to each
    character ("科0", "技1"; "S10" is "S" at position 10): see `strip_position`.
    """
    path = Path(path)
    if tag_column == 0:
        raise UserError(
            f"{path}: data.tag_column is 0, the token column. Set it to the column of the tags (-1 is the last)."
        )
    sentences: list[tuple[int, list[str], list[str], int]] = []
    tokens: list[str] = []
    tags: list[str] = []
    first_line = document = 0
    for number, line in enumerate(_read_lines(path), start=1):
        stripped = line.strip(" \t")
        fields = _FIELD_SEPARATOR.split(stripped) if stripped else []
        if not fields or fields[0] == DOCSTART:
            if tokens:
                sentences.append((first_line, tokens, tags, document))
            tokens, tags = [], []
            document += bool(fields)
            continue
        if not tokens:
            first_line = number
        token, tag = _token_and_tag(fields, tag_column, path, number)
        tokens.append(strip_position(token, path, number) if strip_position_digits else token)
        tags.append(tag)
    if tokens:
        sentences.append((first_line, tokens, tags, document))
    if not sentences:
        raise UserError(
            f"{path}: no sentences: the file holds no token lines. Is it a CoNLL file (one token per line, "
            "the token and its tag separated by spaces or tabs, a blank line between sentences)?"
        )
    return Table(
        path=path,
        columns={
            "tokens": [s[1] for s in sentences],
            "tags": [s[2] for s in sentences],
            "document": [s[3] for s in sentences],
        },
        lines=[s[0] for s in sentences],
        unit="line",
    )


def strip_position(token: str, path: Path, line: int) -> str:
    """The character of a Weibo-style token: every ASCII digit after the first character removed.

    The position in the word can have several digits ("S10", "t11"), and the character itself
    can be a digit ("20" is "2" at position 0, "310" is "3" at position 10), so the first
    character is always kept. This assumes one character per token; a multi-character token
    ending in digits (e.g. "a10" for "a1") would lose them.
    """
    character = token[:1] + token[1:].rstrip(_DIGITS)
    if character == token:
        raise UserError(
            f"{where(path, line)}: token {token!r} has no trailing position digit. Weibo-style files write each "
            "character followed by its position in the word (科0 技1); for other files set "
            "data.strip_position_digits to false."
        )
    return character


def _token_and_tag(fields: list[str], tag_column: int, path: Path, line: int) -> tuple[str, str]:
    if len(fields) == 1:
        raise UserError(
            f"{where(path, line)}: has one field {fields[0]!r} but a token and a tag are needed: a token whose "
            "tag is missing, or a tag column that is not there. Separate the token and its tag with a space "
            "or tab, and sentences with a blank line."
        )
    # The tag may not be the token itself, so a negative column needs one field more than it counts back.
    needed = tag_column + 1 if tag_column > 0 else 1 - tag_column
    if len(fields) < needed:
        raise UserError(
            f"{where(path, line)}: has {len(fields)} fields but data.tag_column {tag_column} needs at least "
            f"{needed}. Set data.tag_column to the column of the tags (counting from 0, the token; -1 is the last)."
        )
    return fields[0], fields[tag_column]


def _read_lines(path: Path) -> list[str]:
    """The file's lines, decoded, without BOM or line endings."""
    check_exists(path)
    if path.is_dir():
        raise UserError(f"{path} is a folder; a CoNLL file is needed.")
    data = path.read_bytes()
    check_text_bytes(path, data)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        # The decoder's offset does not count the BOM that utf-8-sig removed.
        offset = exc.start + (3 if data.startswith(b"\xef\xbb\xbf") else 0)
        raise UserError(
            f"{where(path, _line_of(data, offset))}: byte 0x{data[offset]:02x} is not valid UTF-8. "
            "Save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8 in.conll > out.conll`)."
        ) from None
    # Only \n ends a line: str.splitlines would also split on \x1c, \u2028 ... which can be tokens.
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1
