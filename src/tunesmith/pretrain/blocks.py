"""Documents to training examples: tokenized, then packed into blocks or kept one per document.

Packed (the default): the documents' tokens are concatenated, separated as the objective needs
([SEP] for the encoder, the end-of-text token for a decoder), and cut into blocks of `block_size`
tokens, each framed by the tokenizer's special tokens ([CLS] ... [SEP]). No padding, so no compute
is spent on pad tokens; a block may span the end of one document and the start of the next, as
in BERT's and GPT-2's pretraining. The last, short block is dropped.

Line by line: one example per document, cut to `block_size`; batches are padded.

Each example also keeps which of its tokens are special (never masked) and, for whole-word
masking, a word number per token that the masked-LM collator reads as an offset.
"""

from __future__ import annotations

import datasets
import numpy as np
from transformers import PreTrainedTokenizerBase

from tunesmith.errors import UserError

TOKENIZE_BATCH = 1000


def tokenized_stream(
    documents: list[str], tokenizer: PreTrainedTokenizerBase, separator: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """All documents' token ids end to end (each followed by `separator`, if any), and a word number per
    token that counts on across documents (separators get -1)."""
    ids: list[np.ndarray] = []
    words: list[np.ndarray] = []
    next_word = 0
    for start in range(0, len(documents), TOKENIZE_BATCH):
        encoded = tokenizer(documents[start : start + TOKENIZE_BATCH], add_special_tokens=False)
        for index, tokens in enumerate(encoded["input_ids"]):
            word_ids = np.array([w if w is not None else -1 for w in encoded.word_ids(index)], dtype=np.int64)
            local = np.where(word_ids >= 0, word_ids + next_word, -1)
            next_word += int(word_ids.max()) + 1 if len(word_ids) else 0
            ids.append(np.asarray(tokens, dtype=np.int64))
            words.append(local)
            if separator is not None:
                ids.append(np.array([separator], dtype=np.int64))
                words.append(np.array([-1], dtype=np.int64))
    if not ids:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(ids), np.concatenate(words)


def packed_blocks(
    documents: list[str], tokenizer: PreTrainedTokenizerBase, block_size: int, causal: bool, what: str = "The corpus"
) -> datasets.Dataset:
    """Blocks of exactly `block_size` tokens, special tokens included; `what` names the documents in errors."""
    frame = _frame(tokenizer, causal)
    separator = tokenizer.eos_token_id if causal else tokenizer.sep_token_id
    ids, words = tokenized_stream(documents, tokenizer, separator)
    inner = block_size - len(frame[0]) - len(frame[1])
    count = len(ids) // inner
    if count == 0:
        raise UserError(
            f"{what} holds {len(ids)} tokens, less than one block of {block_size}: add text, or lower "
            "training.max_length."
        )
    ids, words = ids[: count * inner].reshape(count, inner), words[: count * inner].reshape(count, inner)
    head, tail = np.array(frame[0], dtype=np.int64), np.array(frame[1], dtype=np.int64)
    framed = [np.broadcast_to(head, (count, len(head))), ids, np.broadcast_to(tail, (count, len(tail)))]
    blocks = np.concatenate(framed, 1)
    no_word = np.full((count, len(head)), -1), np.full((count, len(tail)), -1)
    return _as_dataset(blocks.tolist(), np.concatenate([no_word[0], words, no_word[1]], 1).tolist())


def line_examples(documents: list[str], tokenizer: PreTrainedTokenizerBase, block_size: int) -> datasets.Dataset:
    """One example per document, special tokens added, cut to `block_size`."""
    examples, word_numbers = [], []
    for start in range(0, len(documents), TOKENIZE_BATCH):
        encoded = tokenizer(documents[start : start + TOKENIZE_BATCH], truncation=True, max_length=block_size)
        for index, tokens in enumerate(encoded["input_ids"]):
            examples.append(tokens)
            word_numbers.append([w if w is not None else -1 for w in encoded.word_ids(index)])
    return _as_dataset(examples, word_numbers)


def _frame(tokenizer: PreTrainedTokenizerBase, causal: bool) -> tuple[list[int], list[int]]:
    """The special tokens before and after a block's text: [CLS] and [SEP] for BERT; none for a decoder."""
    if causal:
        return [], []
    return [tokenizer.cls_token_id], [tokenizer.sep_token_id]


def _as_dataset(examples: list[list[int]], word_numbers: list[list[int]]) -> datasets.Dataset:
    special = [[int(w < 0) for w in words] for words in word_numbers]
    return datasets.Dataset.from_dict(
        {
            "input_ids": examples,
            "special_tokens_mask": special,
            # The whole-word masking collator reads a token's word from its offsets: a token starts a new
            # word where its start differs from the previous token's end.
            "word_numbers": word_numbers,
            "length": [len(example) for example in examples],
        }
    )
