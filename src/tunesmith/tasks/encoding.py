"""Tokenization shared by the tasks, cached on disk by datasets fingerprint.

The cache key hashes the split's content fingerprint, the tokenizer, the length
limit and whatever else the caller says shapes the result, so a rerun on the same
data and model loads the Arrow file instead of tokenizing again, and any change to
one of them tokenizes afresh.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transformers import PreTrainedTokenizerBase

if TYPE_CHECKING:
    import datasets

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
