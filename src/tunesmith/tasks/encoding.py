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

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

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


def sequence_logits(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: list[str],
    pairs: list[str] | None,
    max_length: int,
    batch_size: int = 64,
    both_orders: bool = False,
) -> torch.Tensor:
    """One row of logits per text (pair), in input order, for the sequence-level tasks.

    `both_orders`: each pair's logits averaged with those of the pair swapped.
    """
    if both_orders and pairs is not None:
        given = sequence_logits(model, tokenizer, texts, pairs, max_length, batch_size)
        return (given + sequence_logits(model, tokenizer, pairs, texts, max_length, batch_size)) / 2
    # Longest first so each batch pads little; the original order is restored at the end.
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]) - (len(pairs[i]) if pairs else 0))
    chunks: list[torch.Tensor] = []
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            encoded = tokenizer(
                [texts[i] for i in rows],
                [pairs[i] for i in rows] if pairs is not None else None,
                truncation=True,
                max_length=max_length,
                padding=True,
                return_tensors="pt",
            ).to(model.device)
            chunks.append(model(**encoded).logits.float().cpu())
    if not chunks:
        return torch.empty(0, model.config.num_labels)
    stacked = torch.cat(chunks)
    result = torch.empty_like(stacked)
    result[torch.tensor(order)] = stacked
    return result
