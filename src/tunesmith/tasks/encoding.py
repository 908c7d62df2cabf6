"""Tokenization shared by the tasks, cached on disk by datasets fingerprint.

The cache key hashes the split's content fingerprint, the tokenizer, the length
limit and whatever else the caller says shapes the result, so a rerun on the same
data and model loads the Arrow file instead of tokenizing again, and any change to
one of them tokenizes afresh.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transformers import PreTrainedTokenizerBase

from tunesmith.errors import UserError, brief, where

if TYPE_CHECKING:
    import datasets

logger = logging.getLogger(__name__)

# Bump when the encoding logic changes, so old cache files are not reused.
ENCODING_VERSION = 2


def cache_dir() -> Path:
    """$TUNESMITH_CACHE, else $XDG_CACHE_HOME/tunesmith, else ~/.cache/tunesmith."""
    if "TUNESMITH_CACHE" in os.environ:
        return Path(os.environ["TUNESMITH_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tunesmith"


def cached_map(
    split: datasets.Dataset, encode: Callable[[dict[str, list]], dict[str, list]], key_parts: list[Any]
) -> datasets.Dataset:
    """`split.map(encode, batched=True)`, stored under a key of the split's content and `key_parts`."""
    from datasets.fingerprint import Hasher  # here: predicting needs none of datasets (80 MB imported)

    # `_fingerprint` is datasets' content hash of the split (stable across runs).
    key = Hasher.hash([ENCODING_VERSION, split._fingerprint, *key_parts])
    folder = cache_dir() / "tokenized"
    folder.mkdir(parents=True, exist_ok=True)
    return split.map(
        encode,
        batched=True,
        cache_file_name=str(folder / f"{key}.arrow"),
        new_fingerprint=key,
        desc="Tokenizing",
    )


def tokenize(
    split: datasets.Dataset,
    tokenizer: PreTrainedTokenizerBase,
    max_length: int,
    truncation_side: str = "right",
) -> datasets.Dataset:
    """Texts (and pairs) to input_ids, attention_mask, token_type_ids and a `length` column."""
    has_pair = "text_pair" in split.column_names
    tokenizer.truncation_side = truncation_side

    def encode(batch: dict[str, list]) -> dict[str, list]:
        pair = batch["text_pair"] if has_pair else None
        encoded = tokenizer(batch["text"], pair, truncation=True, max_length=max_length)
        encoded["length"] = [len(ids) for ids in encoded["input_ids"]]
        return encoded

    return cached_map(split, encode, [tokenizer, max_length, truncation_side, has_pair])


def count_truncated(split: datasets.Dataset, max_length: int) -> int:
    if "truncated" in split.column_names:  # recorded where context fills inputs up to max_length (NER)
        return sum(split["truncated"])
    return sum(1 for length in split["length"] if length >= max_length)


def check_readable(
    splits: Sequence[datasets.Dataset],
    tokenizer: PreTrainedTokenizerBase,
    source: Path,
    columns: dict[str, str],
    max_length: int,
    truncation_side: str = "right",
    warn: bool = True,
) -> None:
    """Refuse texts that give the model no token at all; warn about texts it reads only as unknown tokens.

    `splits` all come from the file `source` (a training file and the splits carved from it), and are
    checked together, in line order, so that each problem is reported once. `columns` maps the splits'
    text columns ("text", "text_pair") to the file's names, for messages.
    A text the tokenizer turns into nothing (control, zero-width or other characters it drops) would
    train and score as an empty input: refused, naming its line (for a token-level task, whose words
    are scored one by one, its words are warned about as below). Warned about with a count and the
    first example, not refused, as they are real data: texts of only unknown tokens ([UNK]: emoji,
    characters missing from the vocabulary), which the model sees as their length alone, and words of
    a token-level task that give no sub-token (a lone variation selector), which go untagged.
    Only texts without a plain word are tokenized here (a whitespace-delimited run of printable ASCII,
    for a token list a word of printable ASCII): a plain word gives known tokens in any subword
    vocabulary, and checking SST-2's 67,349 texts then takes a fraction of a second, not ten.
    The tokenized ones are judged on what the model reads: the first `max_length` tokens.
    `warn` False: refuse, but leave the warnings to another process.
    """
    tokenizer.truncation_side = truncation_side
    lines = [line for split in splits for line in _column(split, "line")]
    order = sorted(range(len(lines)), key=lines.__getitem__)
    lines = [lines[row] for row in order]
    for column, name in columns.items():
        if not splits or column not in splits[0].column_names:
            continue
        read = [value for split in splits for value in _column(split, column)]
        values = [read[row] for row in order]
        found = _unreadable(values, tokenizer, max_length)
        # A sentence of a token-level task whose every word gives no token is only such words: warned about
        # with them, not refused (Weibo NER's dev set has a sentence of U+FFFD characters, all tagged O).
        token_level = bool(values) and isinstance(values[0], list)
        if found.empty and not token_level:
            raise _no_token(source, name, lines, values, found.empty)
        if warn:
            _warn_unreadable(source, name, lines, values, found, tokenizer.unk_token)


@dataclass
class _Unreadable:
    """Rows (indices into the checked values) that give no token, and only unknown tokens; for token
    lists, the (row, word) pairs of words that give no sub-token."""

    empty: list[int] = field(default_factory=list)
    unknown: list[int] = field(default_factory=list)
    silent: list[tuple[int, int]] = field(default_factory=list)


def _unreadable(values: list[Any], tokenizer: PreTrainedTokenizerBase, max_length: int) -> _Unreadable:
    token_level = bool(values) and isinstance(values[0], list)
    plain = _plain_sentence if token_level else _PLAIN_WORD.search
    doubtful = [row for row, value in enumerate(values) if not plain(value)]
    found = _Unreadable()
    for start in range(0, len(doubtful), _CHECK_CHUNK):
        rows = doubtful[start : start + _CHECK_CHUNK]
        chunk = [values[row] for row in rows]
        for row, ids in zip(rows, _token_ids(tokenizer, chunk, token_level, max_length), strict=True):
            if token_level:
                found.silent += [(row, word) for word, word_ids in enumerate(ids) if not word_ids]
                ids = [token for word_ids in ids for token in word_ids]
            if not ids:
                found.empty.append(row)
            elif tokenizer.unk_token_id is not None and all(token == tokenizer.unk_token_id for token in ids):
                found.unknown.append(row)
    return found


def _no_token(source: Path, name: str, lines: list[int], values: list[Any], empty: list[int]) -> UserError:
    more = ""
    if len(empty) > 1:
        shown = ", ".join(str(lines[row]) for row in empty[1:6]) + (", ..." if len(empty) > 6 else "")
        count = len(empty) - 1
        more = f" ({count} more {'lines give' if count > 1 else 'line gives'} none either: {shown})"
    return UserError(
        f"{where(source, lines[empty[0]], name)}: the text {brief(values[empty[0]])} gives no token: the "
        "tokenizer drops every character of it (control, zero-width or other invisible characters), so "
        f"the model would read nothing{more}. Remove the row or give it a readable text."
    )


def _warn_unreadable(
    source: Path, name: str, lines: list[int], values: list[Any], found: _Unreadable, unk_token: str | None
) -> None:
    if found.silent:
        row, word = found.silent[0]
        logger.warning(
            '%s: %d word(s) of column "%s" give no token to the tokenizer (it drops every character of '
            "them), so they are never tagged or scored; the first is word %d, %s, of the sentence on line %d. "
            "Remove such words from the data, or keep them untagged.",
            source,
            len(found.silent),
            name,
            word + 1,
            brief(values[row][word]),
            lines[row],
        )
    if found.unknown:
        first = found.unknown[0]
        logger.warning(
            '%s: %d text(s) of column "%s" are only unknown tokens (%s) to the tokenizer, so the model reads '
            "nothing of them but their length; the first is line %d, %s. Check the file's encoding, or "
            "use a model whose vocabulary covers these characters.",
            source,
            len(found.unknown),
            name,
            unk_token,
            lines[first],
            brief(values[first]),
        )


# Rows tokenized at a time by `check_readable`: bounds the memory the token ids take.
_CHECK_CHUNK = 2048
# A word every subword vocabulary knows: printable ASCII between plain whitespace (or the text's ends).
# Narrower than a tokenizer's idea of whitespace on purpose: a word judged plain must be one.
_PLAIN_WORD = re.compile(r"(?:^|[ \t\n\r])[!-~]+(?=[ \t\n\r]|$)")
_PLAIN_TOKEN = re.compile(r"[!-~]+")


def _plain_sentence(words: list[str]) -> bool:
    """Whether every word of a token list is plain printable ASCII, so that each gives known tokens."""
    return all(_PLAIN_TOKEN.fullmatch(word) for word in words)


def _column(split: datasets.Dataset, name: str) -> list[Any]:
    """A column as Python values, through Arrow: ten times quicker than `split[name]` on 67,349 texts."""
    return split.with_format("arrow")[name].to_pylist()


def _token_ids(
    tokenizer: PreTrainedTokenizerBase, texts: list[Any], token_level: bool, max_length: int
) -> list[list[int]] | list[list[list[int]]]:
    """Each text's token ids (no special tokens); for token lists, each word's."""
    options = {"add_special_tokens": False, "return_attention_mask": False, "return_token_type_ids": False}
    if not token_level:
        return tokenizer(texts, truncation=True, max_length=max_length, **options)["input_ids"]
    words = [word for sentence in texts for word in sentence]
    ids = tokenizer(words, **options)["input_ids"] if words else []
    grouped, at = [], 0
    for sentence in texts:
        grouped.append(ids[at : at + len(sentence)])
        at += len(sentence)
    return grouped
