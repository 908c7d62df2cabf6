from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from tunesmith.errors import UserError
from tunesmith.pretrain.tokenizer_training import check_tokenizer_folder, train_tokenizer

DOCUMENTS = ["the cat sat on the mat", "the dog ran to the park", "银行贷款很快", "unbelievable things"] * 20


def test_wordpiece_splits_chinese_per_character_and_reloads_as_bert(tmp_path: Path) -> None:
    train_tokenizer(DOCUMENTS, vocab_size=120, min_frequency=1).save_pretrained(tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    assert type(tokenizer).__name__ == "BertTokenizer"
    pieces = tokenizer.convert_ids_to_tokens(tokenizer("银行贷款", "The Cat")["input_ids"])
    assert pieces == ["[CLS]", "银", "行", "贷", "款", "[SEP]", "the", "cat", "[SEP]"]
    assert tokenizer("a", "b")["token_type_ids"] == [0, 0, 0, 1, 1]
    for token in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"):
        assert token in tokenizer.get_vocab()
    assert tokenizer.pad_token_id == 0


def test_byte_level_bpe_never_needs_unknown(tmp_path: Path) -> None:
    train_tokenizer(DOCUMENTS, vocab_size=300, kind="bpe", min_frequency=1).save_pretrained(tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    ids = tokenizer("zebra ☃ 字")["input_ids"]
    assert tokenizer.unk_token_id not in ids
    assert tokenizer.decode(ids) == "zebra ☃ 字"
    assert tokenizer.eos_token == "</s>" and tokenizer.pad_token == "<pad>"


def test_vocabulary_smaller_than_the_special_tokens_is_refused() -> None:
    with pytest.raises(UserError, match="special tokens"):
        train_tokenizer(DOCUMENTS, vocab_size=5)


def test_empty_corpus_is_refused() -> None:
    with pytest.raises(UserError, match="no text"):
        train_tokenizer(["", "  "], vocab_size=100)


def test_only_a_new_or_empty_folder_is_written(tmp_path: Path) -> None:
    check_tokenizer_folder(tmp_path / "new")
    check_tokenizer_folder(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not an empty folder"):
        check_tokenizer_folder(tmp_path)
