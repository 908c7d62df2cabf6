"""Shared fixtures: a tiny random BERT (seconds, not minutes), an isolated cache, data files."""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# Captured before the autouse fixture below replaces it for most tests.
from tunesmith.stages.evaluate import pretrained_scores as real_pretrained_scores
from tunesmith.stages.save import explain_errors as real_explain_errors

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("TUNESMITH_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared_file(*parts: str) -> Path:
    """A file of ../shared/data, or skip the test with a message saying what is missing."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (the shared benchmark data beside the checkout); not present here")
    return path


@pytest.fixture(autouse=True)
def _offline_and_isolated(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests never touch the network, and never share a tokenization cache with the user's.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("TUNESMITH_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(autouse=True)
def _no_report_figures(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    # A run's report figures cost about 0.7 s of matplotlib each time; the tests marked `figures`
    # (tests/evaluate) draw and check them, and the many other runs trained in-process skip them.
    if request.node.get_closest_marker("figures") is None:
        monkeypatch.setattr("tunesmith.evaluate.rebuild.draw", lambda *args, **kwargs: [])


def _skip_explained_errors(patch: pytest.MonkeyPatch) -> None:
    patch.setattr("tunesmith.stages.save.explain_errors", lambda *args, **kwargs: None)


@pytest.fixture(autouse=True)
def _no_explained_errors(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    # Explaining a run's worst errors (integrated gradients from the saved model) costs about 0.5 s a run; the
    # tests marked `explained` do it, and the many other runs trained in-process skip it.
    if request.node.get_closest_marker("explained") is None:
        _skip_explained_errors(monkeypatch)


def _skip_pretrained_baselines(patch: pytest.MonkeyPatch) -> None:
    patch.setattr("tunesmith.stages.evaluate.pretrained_scores", lambda *args, **kwargs: {})


@pytest.fixture(autouse=True)
def _no_pretrained_baselines(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    # The pretrained model's baselines (a linear probe on its frozen embeddings) load the backbone again and
    # embed every split, about 0.5 s a run; the tests marked `probed` measure them, and the many other runs
    # trained in-process skip it.
    if request.node.get_closest_marker("probed") is None:
        _skip_pretrained_baselines(monkeypatch)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A 2-layer, 32-wide BERT with random weights and the real MiniLM tokenizer."""
    # No dropout: runs that differ only in batching must give the same numbers.
    return write_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), dropout=0.0)


@pytest.fixture(scope="session")
def tiny_dropout_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The tiny BERT with dropout, so that a run's numbers depend on the random generators' state."""
    return write_tiny_bert(tmp_path_factory.mktemp("tiny-bert-dropout"), dropout=0.1)


def write_tiny_bert(folder: Path, dropout: float) -> str:
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from tunesmith.models.backbones import resolve

    tokenizer = AutoTokenizer.from_pretrained(resolve("minilm"))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


SENTIMENT_WORDS = {
    "pos": ["great", "wonderful", "excellent", "lovely", "superb", "delightful"],
    "neg": ["awful", "terrible", "horrible", "dreadful", "boring", "poor"],
}


def write_sentiment_csv(path: Path, rows_per_label: int = 40, seed: int = 0) -> Path:
    """An easy, learnable two-class CSV: the label is carried by one sentiment word."""
    import csv
    import random

    rng = random.Random(seed)
    fillers = ["the film was", "honestly a", "this book is", "what a", "the service felt", "our trip was"]
    rows = []
    for label, words in SENTIMENT_WORDS.items():
        for i in range(rows_per_label):
            rows.append((f"{rng.choice(fillers)} {rng.choice(words)} {'experience' if i % 2 else 'one'}", label))
    rng.shuffle(rows)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


@pytest.fixture
def sentiment_csv(tmp_path: Path) -> Path:
    return write_sentiment_csv(tmp_path / "sentiment.csv")


@pytest.fixture
def tiny_config(tiny_model: str, sentiment_csv: Path, tmp_path: Path) -> dict:
    """A config dict that trains the tiny model for a few seconds."""
    return {
        "model": tiny_model,
        "output_dir": str(tmp_path / "run"),
        "data": {"train": str(sentiment_csv)},
        "training": {"epochs": 3, "batch_size": 8, "learning_rate": 2e-3, "logging_steps": 5, "warmup_ratio": 0.0},
    }


def write_regression_csv(path: Path, rows: int = 80, seed: int = 0) -> Path:
    """Score = the number of positive words (0-3) in a text: a learnable regression target."""
    import csv
    import random

    rng = random.Random(seed)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "score"])
        for i in range(rows):
            positives = i % 4
            words = rng.sample(SENTIMENT_WORDS["pos"], positives) + rng.sample(SENTIMENT_WORDS["neg"], 3 - positives)
            rng.shuffle(words)
            writer.writerow([" ".join(words), f"{positives:.1f}"])
    return path


TOPICS = {"sport": ["football", "tennis", "golf"], "music": ["guitar", "piano", "violin"], "food": ["pizza", "soup"]}


def write_multilabel_csv(path: Path, rows: int = 90, seed: int = 0) -> Path:
    """Labels = the topics whose words a text mentions, joined with commas (one or two per row)."""
    import csv
    import random

    rng = random.Random(seed)
    names = sorted(TOPICS)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "topics"])
        for i in range(rows):
            chosen = rng.sample(names, 1 + i % 2)
            words = [rng.choice(TOPICS[topic]) for topic in chosen] + ["today", "we", "talked"]
            rng.shuffle(words)
            writer.writerow([" ".join(words), ",".join(chosen)])
    return path


PEOPLE = [["john", "smith"], ["mary"], ["peter", "parker"], ["anna"]]
PLACES = [["paris"], ["new", "york"], ["berlin"], ["rome"]]


def ner_sentences(count: int, seed: int = 0) -> list[tuple[list[str], list[str]]]:
    """Sentences like "yesterday john smith visited paris" with IOB2 PER and LOC tags."""
    import random

    rng = random.Random(seed)
    sentences = []
    for _ in range(count):
        person, place = rng.choice(PEOPLE), rng.choice(PLACES)
        tokens = [rng.choice(["yesterday", "today", "then"]), *person, rng.choice(["visited", "left"]), *place]
        tags = ["O"] + ["B-PER"] + ["I-PER"] * (len(person) - 1) + ["O", "B-LOC"] + ["I-LOC"] * (len(place) - 1)
        sentences.append((tokens, tags))
    return sentences


def write_conll(path: Path, sentences: list[tuple[list[str], list[str]]]) -> Path:
    blocks = ["\n".join(f"{t} {tag}" for t, tag in zip(tokens, tags, strict=True)) for tokens, tags in sentences]
    path.write_text("-DOCSTART- O\n\n" + "\n\n".join(blocks) + "\n", encoding="utf-8")
    return path


def train_once(tmp_path_factory: pytest.TempPathFactory, model: str, **settings: Any) -> Path:
    """A finished run of `model` on the sentiment data, for a fixture broader than one test."""
    import tunesmith

    folder = tmp_path_factory.mktemp("trained-run")
    config = {
        "model": model,
        "output_dir": str(folder / "run"),
        "data": {"train": str(write_sentiment_csv(folder / "sentiment.csv"))},
        "training": {"epochs": 2, "batch_size": 8, "learning_rate": 2e-3, "warmup_ratio": 0.0},
        **settings,
    }
    with pytest.MonkeyPatch.context() as patch:
        # What `_offline_and_isolated` sets for each test, which a broader fixture starts before.
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("TRANSFORMERS_OFFLINE", "1")
        patch.setenv("TUNESMITH_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
        # A run shared by many tests keeps everything a run writes, explained errors included.
        patch.setattr("tunesmith.stages.save.explain_errors", real_explain_errors)
        patch.setattr("tunesmith.stages.evaluate.pretrained_scores", real_pretrained_scores)
        return tunesmith.finetune(config).path


@pytest.fixture(scope="session")
def trained_run(tiny_model: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run of the tiny model, trained once for the whole session: copy it (`run_copy`) to change it."""
    return train_once(tmp_path_factory, tiny_model)


@pytest.fixture
def run_copy(trained_run: Path, tmp_path: Path) -> Path:
    """A copy of `trained_run` that a test may damage."""
    import shutil

    return Path(shutil.copytree(trained_run, tmp_path / "copied-run"))


def edit_weights(path: Path, change: Callable[[dict], object]) -> None:
    """Rewrite a safetensors file with `change` applied to its tensors (a damaged or foreign run)."""
    from safetensors.torch import load_file, save_file

    weights = load_file(str(path))
    change(weights)
    save_file(weights, str(path), metadata={"format": "pt"})


class WritesMarker:
    """Unpickling it creates a file: a stand-in for a pickle that runs code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


# A small corpus and a WordPiece tokenizer trained on it (seconds): the pretraining tests' material.
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


# A tiny random decoder with a byte-level BPE tokenizer (task causal's tests).
def write_tiny_decoder(folder: Path, architecture: str = "gpt2") -> str:
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    from tunesmith.pretrain.tokenizer_training import train_tokenizer

    rng = random.Random(0)
    documents = [" ".join(rng.choice(WORDS) for _ in range(12)) for _ in range(200)] + ["0123456789 ?:=+"]
    # No dropout: tests compare gradients and losses of the same examples batched in different ways.
    quiet = {"resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}
    tokenizer = train_tokenizer(documents, vocab_size=300, kind="bpe", lowercase=False, min_frequency=1)
    special = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
               "pad_token_id": tokenizer.pad_token_id}  # fmt: skip
    if architecture == "gpt2":
        config = GPT2Config(
            vocab_size=len(tokenizer), n_positions=128, n_embd=32, n_layer=2, n_head=2, **quiet, **special
        )
        model = GPT2LMHeadModel(config)
    else:
        config = LlamaConfig(
            vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=128, **special,
        )  # fmt: skip
        model = LlamaForCausalLM(config)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory: pytest.TempPathFactory) -> str:
    return write_tiny_decoder(tmp_path_factory.mktemp("tiny-gpt2"), "gpt2")


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> str:
    return write_tiny_decoder(tmp_path_factory.mktemp("tiny-llama"), "llama")
