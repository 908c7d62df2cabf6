import os

import datasets

from tunesmith.models.backbones import load_tokenizer
from tunesmith.tasks.encoding import count_truncated, tokenize


def test_tokenize_adds_ids_and_lengths_and_is_cached(tiny_model: str) -> None:
    tokenizer = load_tokenizer(tiny_model)
    split = datasets.Dataset.from_dict({"text": ["a short one", "a somewhat longer text here"], "label": [0, 1]})
    first = tokenize(split, tokenizer, max_length=5)
    assert first["length"] == [5, 5]  # [CLS] a short one [SEP] fits; the longer one is cut to 5
    assert count_truncated(first, 5) == 2
    cache_file = first.cache_files[0]["filename"]
    written = os.path.getmtime(cache_file)
    second = tokenize(split, tokenizer, max_length=5)
    assert second.cache_files[0]["filename"] == cache_file
    assert os.path.getmtime(cache_file) == written  # loaded, not rewritten
    other = tokenize(split, tokenizer, max_length=16)
    assert other.cache_files[0]["filename"] != cache_file
    assert other["length"] == [5, 7]


def test_pairs_are_encoded_together(tiny_model: str) -> None:
    tokenizer = load_tokenizer(tiny_model)
    split = datasets.Dataset.from_dict({"text": ["first"], "text_pair": ["second"], "label": [0]})
    encoded = tokenize(split, tokenizer, max_length=32)
    assert encoded["token_type_ids"][0] == [0, 0, 0, 1, 1]
