from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from tunesmith.errors import UserError
from tunesmith.pretrain.blocks import line_examples, packed_blocks


def test_packed_blocks_are_full_and_framed(tokenizer_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    documents = ["the cat sat on the mat .", "a dog ran to the park .", "big red house ."] * 10
    blocks = packed_blocks(documents, tokenizer, block_size=16, causal=False)
    separator = [tokenizer.sep_token_id]
    stream = [t for d in documents for t in tokenizer(d, add_special_tokens=False)["input_ids"] + separator]
    assert len(blocks) == len(stream) // 14
    for index, block in enumerate(blocks):
        ids = block["input_ids"]
        assert len(ids) == 16 and ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
        # The text between the frame is the stream, in order, without gaps.
        assert ids[1:-1] == stream[index * 14 : (index + 1) * 14]
        # Never masked: the frame and the separators between documents.
        assert block["special_tokens_mask"] == [int(t in (tokenizer.cls_token_id, tokenizer.sep_token_id)) for t in ids]


def test_word_numbers_count_on_across_documents(tokenizer_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    pieces = len(tokenizer("gardenriver", add_special_tokens=False)["input_ids"])
    assert pieces > 1  # the word is split, so its pieces share a number
    # [CLS] gardenriver cat [SEP] unbelievable [SEP] [SEP]: the stream exactly fills the block.
    block = packed_blocks(["gardenriver cat", "gardenriver"], tokenizer, 2 * pieces + 5, causal=False)[0]
    expected = [-1] + [0] * pieces + [1, -1] + [2] * pieces + [-1, -1]
    assert block["word_numbers"] == expected


def test_causal_blocks_have_no_frame_and_end_documents(tokenizer_dir: Path) -> None:
    from tunesmith.pretrain.tokenizer_training import train_tokenizer

    tokenizer = train_tokenizer(["the cat sat", "the dog ran"] * 20, vocab_size=300, kind="bpe", min_frequency=1)
    blocks = packed_blocks(["the cat sat", "the dog ran"] * 5, tokenizer, block_size=8, causal=True)
    ids = [t for block in blocks["input_ids"] for t in block]
    assert tokenizer.eos_token_id in ids and tokenizer.bos_token_id not in ids
    assert all(len(block) == 8 for block in blocks["input_ids"])


def test_a_corpus_shorter_than_one_block_is_refused(tokenizer_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    with pytest.raises(UserError, match="less than one block of 128"):
        packed_blocks(["the cat"], tokenizer, block_size=128, causal=False)


def test_line_examples_are_cut_to_the_block(tokenizer_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    examples = line_examples(["the cat sat on the mat " * 10, "a dog"], tokenizer, block_size=12)
    assert examples["length"] == [12, 4]
    assert examples[0]["input_ids"][-1] == tokenizer.sep_token_id
