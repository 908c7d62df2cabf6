"""Tokenization shared by the text tasks, cached on disk by datasets fingerprint.

The cache key hashes the split's content fingerprint, the tokenizer and the length
limit, so a rerun on the same data and model loads the Arrow file instead of
tokenizing again, and any change to one of them tokenizes afresh.
"""

from __future__ import annotations

import os
from pathlib import Path

import datasets
from datasets.fingerprint import Hasher
from transformers import PreTrainedTokenizerBase

# Bump when the encoding logic changes, so old cache files are not reused.
ENCODING_VERSION = 1


def cache_dir() -> Path:
    """$TUNESMITH_CACHE, else $XDG_CACHE_HOME/tunesmith, else ~/.cache/tunesmith."""
    if "TUNESMITH_CACHE" in os.environ:
        return Path(os.environ["TUNESMITH_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tunesmith"


def tokenize(
    split: datasets.Dataset,
    tokenizer: PreTrainedTokenizerBase,
    max_length: int,
    truncation_side: str = "right",
) -> datasets.Dataset:
    """Add input_ids (and attention_mask, token_type_ids) and a `length` column."""
    has_pair = "text_pair" in split.column_names
    key = Hasher.hash(
        # `_fingerprint` is datasets' content hash of the split (stable across runs).
        [ENCODING_VERSION, split._fingerprint, tokenizer, max_length, truncation_side, has_pair]
    )
    folder = cache_dir() / "tokenized"
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.truncation_side = truncation_side

    def encode(batch: dict[str, list]) -> dict[str, list]:
        pair = batch["text_pair"] if has_pair else None
        encoded = tokenizer(batch["text"], pair, truncation=True, max_length=max_length)
        encoded["length"] = [len(ids) for ids in encoded["input_ids"]]
        return encoded

    return split.map(
        encode,
        batched=True,
        cache_file_name=str(folder / f"{key}.arrow"),
        new_fingerprint=key,
        desc="Tokenizing",
    )


def count_truncated(split: datasets.Dataset, max_length: int) -> int:
    return sum(1 for length in split["length"] if length >= max_length)
