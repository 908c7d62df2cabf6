"""Extend a pretrained model's vocabulary with words of a new corpus that its tokenizer handles badly.

A word is a candidate when the tokenizer turns it into [UNK] (a script it never saw: most Chinese
characters are unknown to an English BERT) or into three or more pieces (jargon). The most
frequent candidates become tokens of their own. A new token's embedding starts as the mean of the
embeddings of the pieces it used to be, [UNK] left out; one that was only [UNK] starts as the mean
of all embeddings, so no new row is far from what the model has seen. Words of letters are added
as whole words only (not matched inside longer words); characters of unspaced scripts anywhere.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import torch
from tokenizers import AddedToken
from transformers import PreTrainedTokenizerBase

# Words split into this many pieces or more are candidates too.
MANY_PIECES = 3


@dataclass
class NewToken:
    text: str
    count: int
    # The token ids the word was before, [UNK] left out (empty: it was unknown).
    pieces: list[int]


def new_tokens(
    documents: list[str], tokenizer: PreTrainedTokenizerBase, limit: int, min_frequency: int
) -> list[NewToken]:
    """Up to `limit` words of `documents` to add to `tokenizer`, the unknown ones first, then by frequency."""
    backend = tokenizer.backend_tokenizer
    counts: Counter[str] = Counter()
    for document in documents:
        normalized = backend.normalizer.normalize_str(document) if backend.normalizer else document
        counts.update(word for word, _ in backend.pre_tokenizer.pre_tokenize_str(normalized))
    vocabulary = tokenizer.get_vocab()
    found = []
    for word, count in counts.most_common():
        if count < min_frequency:
            break
        if word in vocabulary:
            continue
        ids = tokenizer(word, add_special_tokens=False)["input_ids"]
        pieces = [i for i in ids if i != tokenizer.unk_token_id]
        if len(pieces) < len(ids) or len(ids) >= MANY_PIECES:
            found.append(NewToken(word, count, pieces))
    found.sort(key=lambda token: (bool(token.pieces), -token.count))
    return found[:limit]


def add_tokens(tokenizer: PreTrainedTokenizerBase, tokens: list[NewToken]) -> None:
    tokenizer.add_tokens(
        [AddedToken(token.text, single_word=token.text.isascii(), normalized=True) for token in tokens]
    )


def initial_rows(embeddings: torch.Tensor, tokens: list[NewToken]) -> torch.Tensor:
    """The new rows of an embedding matrix (or of a bias, 1-D): the mean of each word's old pieces."""
    fallback = embeddings.mean(dim=0)
    rows = [embeddings[token.pieces].mean(dim=0) if token.pieces else fallback for token in tokens]
    return torch.stack(rows) if rows else embeddings[:0]
