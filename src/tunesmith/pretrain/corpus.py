"""Raw text for pretraining: documents from plain text files, from a text column of any table, or from
the sentences of CoNLL files.

Plain text is one document per line, or (`documents: paragraphs`) documents separated by blank lines;
line endings may be CRLF and a UTF-8 BOM is skipped. A file that is binary, not UTF-8, or holds no text
is refused with its name (and line), since a corpus of nothing trains nothing.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from tunesmith.data.conll import read_conll
from tunesmith.data.readers import check_exists, decode_text, read_table
from tunesmith.errors import UserError
from tunesmith.pretrain.config import CorpusConfig

PLAIN_TEXT_SUFFIXES = {".txt", ".raw", ".tokens", ".text", ".md"}
TABLE_FORMATS = {"csv", "tsv", "jsonl", "parquet"}
_BLANK_LINES = re.compile(r"\n[ \t]*\n")


def read_corpus(paths: list[Path], cfg: CorpusConfig) -> list[str]:
    """The documents of every file, in order; blank ones dropped. Refuses a corpus with no text."""
    documents: list[str] = []
    for path in paths:
        found = read_documents(path, cfg)
        if not found:
            raise UserError(f"{path}: holds no text to pretrain on. Point data.train at a file with text in it.")
        documents += found
    if cfg.max_documents is not None and len(documents) > cfg.max_documents:
        chosen = sorted(random.Random(0).sample(range(len(documents)), cfg.max_documents))
        documents = [documents[index] for index in chosen]
    return documents


def read_documents(path: Path, cfg: CorpusConfig) -> list[str]:
    check_exists(path)
    fmt = corpus_format(path, cfg.format)
    if fmt == "conll":
        table = read_conll(path, strip_position_digits=cfg.strip_position_digits)
        return [join_tokens(tokens) for tokens in table.columns["tokens"]]
    if fmt in TABLE_FORMATS:
        table = read_table(path, fmt)
        if cfg.text_column not in table.columns:
            raise UserError(
                f'{path}: no column "{cfg.text_column}" (it has {", ".join(table.columns)}). '
                "Set data.text_column to the column that holds the text."
            )
        return [text.strip() for text in map(str, table.columns[cfg.text_column]) if text.strip()]
    return split_documents(read_text(path), cfg.documents)


def corpus_format(path: Path, declared: str) -> str:
    if declared != "auto":
        return declared
    suffix = path.suffix.lower()
    if suffix in PLAIN_TEXT_SUFFIXES or not suffix:
        return "text"
    if suffix in {".conll", ".bio", ".iob"}:
        return "conll"
    formats = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet"}
    if suffix not in formats:
        raise UserError(
            f"{path}: cannot tell the format from the extension {suffix!r}. Set data.format "
            "(text, csv, tsv, jsonl, parquet or conll)."
        )
    return formats[suffix]


def read_text(path: Path) -> str:
    if path.is_dir():
        raise UserError(f"{path} is a folder: name the text files in it (data.train takes a list).")
    return decode_text(path).replace("\r\n", "\n").replace("\r", "\n")


def split_documents(text: str, documents: str) -> list[str]:
    pieces = _BLANK_LINES.split(text) if documents == "paragraphs" else text.split("\n")
    return [" ".join(piece.split()) for piece in pieces if piece.strip()]


def join_tokens(tokens: list[str]) -> str:
    """A sentence from its tokens: with spaces, except between single characters of scripts written
    without them (Chinese NER data has one character per token)."""
    unspaced = all(len(token) == 1 and not token.isascii() for token in tokens)
    return ("" if unspaced else " ").join(tokens)
