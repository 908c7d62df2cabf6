"""Train a tokenizer on a corpus with the tokenizers library, saved in Hugging Face format.

- `wordpiece`: BERT's: Unicode clean-up, optional lower-casing and accent stripping, every CJK
  character a word of its own (so Chinese text becomes one token per character, as in Chinese BERT),
  punctuation split, WordPiece with "##" continuations; [PAD] [UNK] [CLS] [SEP] [MASK].
- `bpe`: byte-level BPE as in GPT-2/RoBERTa: no unknown token ever; <s> </s> <pad> <unk> <mask>.

The folder holds tokenizer.json and its config, loadable with AutoTokenizer, and works with the
encoder of models/scratch (wordpiece) or a decoder (either).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import BertTokenizerFast, PreTrainedTokenizerFast

from tunesmith.errors import UserError

TokenizerKind = Literal["wordpiece", "bpe"]
WORDPIECE_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
BPE_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def train_tokenizer(
    documents: list[str], vocab_size: int, kind: TokenizerKind = "wordpiece", lowercase: bool = True,
    min_frequency: int = 2,
) -> PreTrainedTokenizerFast:  # fmt: skip
    specials = WORDPIECE_SPECIALS if kind == "wordpiece" else BPE_SPECIALS
    if vocab_size <= len(specials):
        raise UserError(
            f"--vocab-size {vocab_size} leaves no room for tokens: the {len(specials)} special tokens "
            f"({' '.join(specials)}) take that many. Ask for a few thousand at least."
        )
    if not any(document.strip() for document in documents):
        raise UserError("The corpus holds no text: a tokenizer needs text to learn its vocabulary from.")
    build = _wordpiece if kind == "wordpiece" else _byte_level_bpe
    return build(_batches(documents), vocab_size, lowercase, min_frequency)


def _batches(documents: list[str], size: int = 1000) -> Iterator[list[str]]:
    for start in range(0, len(documents), size):
        yield documents[start : start + size]


def _wordpiece(
    batches: Iterator[list[str]], vocab_size: int, lowercase: bool, min_frequency: int
) -> PreTrainedTokenizerFast:
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=lowercase, lowercase=lowercase
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=WORDPIECE_SPECIALS, show_progress=False,
        continuing_subword_prefix="##",
    )  # fmt: skip
    tokenizer.train_from_iterator(batches, trainer)
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    # Saved as BERT's tokenizer class, so that AutoTokenizer gives token type ids (pairs, NER) as BERT's does.
    return BertTokenizerFast(
        tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", do_lower_case=lowercase, strip_accents=lowercase, model_max_length=512,
    )  # fmt: skip


def _byte_level_bpe(
    batches: Iterator[list[str]], vocab_size: int, lowercase: bool, min_frequency: int
) -> PreTrainedTokenizerFast:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFC(), *([normalizers.Lowercase()] if lowercase else [])])
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=BPE_SPECIALS, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )  # fmt: skip
    tokenizer.train_from_iterator(batches, trainer)
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    tokenizer.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>",
        mask_token="<mask>", model_max_length=1024,
    )  # fmt: skip


def check_tokenizer_folder(folder: Path) -> None:
    """Refuse to write into a folder that holds anything: the tokenizer's files would mix with others."""
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise UserError(
            f"{folder} already exists and is not an empty folder: tunesmith writes a tokenizer only into a new "
            "or empty folder. Choose another --output-dir."
        )
