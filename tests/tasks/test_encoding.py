import logging
import os
from pathlib import Path

import datasets
import pytest

from tunesmith.errors import UserError
from tunesmith.models.backbones import load_tokenizer
from tunesmith.tasks.encoding import check_readable, count_truncated, tokenize


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


def split_of(texts: list, pairs: list | None = None, first_line: int = 2) -> datasets.Dataset:
    columns = {"text": texts, "line": list(range(first_line, first_line + len(texts)))}
    if pairs is not None:
        columns["text_pair"] = pairs
    return datasets.Dataset.from_dict(columns)


def test_a_text_that_tokenizes_to_nothing_is_refused_naming_its_line(tiny_model: str) -> None:
    # Visible to Unicode, but the uncased tokenizer strips accents: a lone combining accent gives no token.
    tokenizer = load_tokenizer(tiny_model)
    texts = ["a fine film", "\u0301", "good", "\u0301\u0300", "\u0301"]
    with pytest.raises(UserError) as caught:
        check_readable([split_of(texts)], tokenizer, Path("t.csv"), {"text": "review"}, max_length=32)
    message = str(caught.value)
    assert message.startswith('t.csv, line 3, column "review": the text')
    assert "gives no token" in message and "(2 more lines give none either: 5, 6)" in message
    check_readable([split_of(["a fine film", "good"])], tokenizer, Path("t.csv"), {"text": "review"}, max_length=32)


def test_splits_of_one_file_are_checked_together_in_line_order(tiny_model: str) -> None:
    tokenizer = load_tokenizer(tiny_model)
    train, carved = split_of(["fine", "\u0301"], first_line=10), split_of(["\u0301", "good"], first_line=4)
    with pytest.raises(UserError, match=r"line 4, .*\(1 more line gives none either: 11\)"):
        check_readable([train, carved], tokenizer, Path("t.csv"), {"text": "text"}, max_length=32)


def test_a_second_text_is_checked_under_its_own_column(tiny_model: str) -> None:
    tokenizer = load_tokenizer(tiny_model)
    split = split_of(["one", "two"], ["fine", "\u0301"])
    with pytest.raises(UserError, match='t.csv, line 3, column "second": the text'):
        check_readable([split], tokenizer, Path("t.csv"), {"text": "first", "text_pair": "second"}, max_length=32)


def test_texts_of_only_unknown_tokens_are_counted_in_one_warning(
    tiny_model: str, caplog: pytest.LogCaptureFixture
) -> None:
    tokenizer = load_tokenizer(tiny_model)
    split = split_of(["a fine film", "\U0001f600", "ok", "\U0001f44d\U0001f600", "fine \U0001f600"])
    with caplog.at_level(logging.WARNING, logger="tunesmith"):
        check_readable([split], tokenizer, Path("t.csv"), {"text": "text"}, max_length=32)
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert message.startswith('t.csv: 2 text(s) of column "text" are only unknown tokens ([UNK])')
    assert "the first is line 3, '\U0001f600'" in message
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tunesmith"):
        check_readable([split], tokenizer, Path("t.csv"), {"text": "text"}, max_length=32, warn=False)
    assert not caplog.records


def test_token_level_words_without_sub_tokens_are_warned_about_even_a_whole_sentence_of_them(
    tiny_model: str, caplog: pytest.LogCaptureFixture
) -> None:
    tokenizer = load_tokenizer(tiny_model)
    split = split_of([["EU", "\u0301", "rejects"], ["Peter"]])
    with caplog.at_level(logging.WARNING, logger="tunesmith"):
        check_readable([split], tokenizer, Path("t.conll"), {"text": "tokens"}, max_length=32)
    [record] = caplog.records
    assert '1 word(s) of column "tokens" give no token' in record.getMessage()
    assert "word 2, '\u0301', of the sentence on line 2" in record.getMessage()
    # A sentence of only such words (Weibo NER's dev set has one of U+FFFD characters): its words go
    # untagged like any other such word; nothing else of it is scored, so it is no error.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tunesmith"):
        check_readable([split_of([["EU"], ["\u0301", "\ufffd"]])], tokenizer, Path("t.conll"), {"text": "tokens"}, 32)
    [record] = caplog.records
    assert '2 word(s) of column "tokens" give no token' in record.getMessage()
