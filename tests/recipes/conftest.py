"""A small corpus and a WordPiece tokenizer trained on it (seconds), shared by the pretraining tests."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

WORDS = [
    "the",
    "a",
    "cat",
    "dog",
    "sat",
    "on",
    "mat",
    "ran",
    "to",
    "park",
    "big",
    "small",
    "red",
    "blue",
    "house",
    "tree",
    "river",
    "bank",
    "money",
    "loan",
    "paid",
    "quickly",
    "slowly",
    "happy",
    "sad",
    "film",
    "book",
    "read",
    "wrote",
    "music",
    "played",
    "garden",
    "city",
    "town",
    "road",
]


def write_corpus(path: Path, documents: int = 300, seed: int = 0) -> Path:
    rng = random.Random(seed)
    lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 20))) + " ." for _ in range(documents)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus") / "corpus.txt")


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory, corpus: Path) -> Path:
    from tunesmith.pretrain.tokenizer_training import train_tokenizer

    documents = corpus.read_text(encoding="utf-8").splitlines() + ["银行 贷款 中文 字符", "unbelievable unbelievably"]
    folder = tmp_path_factory.mktemp("tokenizer")
    train_tokenizer(documents, vocab_size=200, min_frequency=1).save_pretrained(folder)
    return folder
