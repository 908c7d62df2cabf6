"""Prompt-based fine-tuning through a masked-LM head (method: cloze)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import tunesmith
from tunesmith.errors import UserError
from tunesmith.fewshot.cloze import ClozeClassifier, fit_cloze, verbaliser_ids

VERBALIZER = {"pos": "great", "neg": "awful"}


@pytest.fixture(scope="module")
def tiny_mlm(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A 2-layer BERT with a (random) masked-LM head and the MiniLM tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    from tunesmith.models.backbones import resolve

    folder = tmp_path_factory.mktemp("tiny-mlm")
    tokenizer = AutoTokenizer.from_pretrained(resolve("minilm"))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    torch.manual_seed(0)
    BertForMaskedLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def test_the_cloze_keeps_the_mask_when_the_text_is_cut(tiny_mlm: str) -> None:
    classifier = ClozeClassifier.from_backbone(tiny_mlm, "{text} It was {mask}.", VERBALIZER, ["neg", "pos"], 16)
    batch = classifier.encode(["word " * 50, "short"])
    assert batch["input_ids"].shape[1] == 16
    mask = classifier.tokenizer.mask_token_id
    assert ((batch["input_ids"] == mask).sum(dim=1) == 1).all()
    assert classifier(batch).shape == (2, 2)


def test_training_puts_each_label_word_at_the_mask(tiny_mlm: str, tmp_path: Path) -> None:
    import csv

    from tests.conftest import write_sentiment_csv

    rows = list(csv.DictReader(write_sentiment_csv(tmp_path / "s.csv").open()))[:16]
    texts, targets = [row["text"] for row in rows], [int(row["label"] == "pos") for row in rows]
    classifier = ClozeClassifier.from_backbone(tiny_mlm, "{text} . it was {mask} .", VERBALIZER, ["neg", "pos"], 64)
    before = classifier.probabilities(texts)
    summary = fit_cloze(classifier, texts, targets, 30, 8, 2e-3, 0.0, seed=0)
    after = classifier.probabilities(texts)
    assert summary.losses[-1] < 0.2 < summary.losses[0]
    assert (after.argmax(axis=1) == targets).all() and not (before.argmax(axis=1) == targets).all()


def test_a_cloze_run_saves_its_model_and_reloads(tiny_mlm: str, tiny_config: dict) -> None:
    config = {
        **tiny_config,
        "model": tiny_mlm,
        "method": "cloze",
        "cloze": {"template": "{text} . it was {mask} .", "verbalizer": VERBALIZER},
        "training": {**tiny_config["training"], "epochs": 4},
    }
    run = tunesmith.finetune(config)
    assert (run.path / "model" / "config.json").is_file() and not (run.path / "head.safetensors").exists()
    losses = [line for line in (run.path / "history.jsonl").read_text().splitlines() if '"learning_rate"' in line]
    assert len(losses) == run.metrics["training"]["steps"] > 0
    assert set(run.metrics["test"]["per_class"]) == {"neg", "pos"}
    predictor = tunesmith.load(run.path)
    texts = ["honestly a wonderful one", "what a dreadful experience"]
    first, again = predictor.probabilities(texts), tunesmith.load(run.path).probabilities(texts)
    assert first == pytest.approx(again)


def test_a_model_without_a_masked_lm_head_and_bad_verbalisers_are_refused(tiny_mlm: str, tiny_model: str) -> None:
    with pytest.raises(UserError, match="no trained masked-LM head"):
        ClozeClassifier.from_backbone(tiny_model, "{text} {mask}", VERBALIZER, ["neg", "pos"], 32)
    tokenizer = ClozeClassifier.from_backbone(tiny_mlm, "{text} {mask}", VERBALIZER, ["neg", "pos"], 32).tokenizer
    with pytest.raises(UserError, match="no word for 'pos'"):
        verbaliser_ids(tokenizer, ["neg", "pos"], {"neg": "awful"})
    with pytest.raises(UserError, match="tokens to the model's tokenizer"):
        verbaliser_ids(tokenizer, ["neg", "pos"], {"neg": "awful", "pos": "supercalifragilistic"})


def test_cloze_config_checks(tiny_config: dict, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="needs cloze.verbalizer"):
        tunesmith.finetune({**tiny_config, "method": "cloze"})
    with pytest.raises(UserError, match="exactly once"):
        tunesmith.finetune(
            {**tiny_config, "method": "cloze", "cloze": {"template": "{text}", "verbalizer": VERBALIZER}}
        )
    from tunesmith.config import validate_config

    # YAML reads the label 1 as a number; it is the label "1".
    cfg = validate_config({**tiny_config, "method": "cloze", "cloze": {"verbalizer": {1: "great", 0: "bad"}}}, "test")
    assert cfg.cloze.verbalizer == {"1": "great", "0": "bad"}


def test_fit_cloze_repeats_with_its_seed(tiny_mlm: str) -> None:
    texts, targets = ["a great film", "an awful film", "lovely", "dreadful"], [1, 0, 1, 0]

    def losses() -> list[float]:
        classifier = ClozeClassifier.from_backbone(tiny_mlm, "{text} {mask}", VERBALIZER, ["neg", "pos"], 32)
        return fit_cloze(classifier, texts, targets, 3, 2, 1e-3, 0.0, seed=5).losses

    assert losses() == pytest.approx(losses())


def test_a_model_continued_by_tunesmith_pretrain_brings_its_masked_lm_head(tiny_model: str, tmp_path: Path) -> None:
    """The SST-2 path (docs/little-data.md): a BERT saved without an MLM head, given one by `pretrain`."""
    from safetensors.torch import load_file

    from tunesmith.recipes.pretrain import pretrain

    corpus = tmp_path / "sentences.txt"
    corpus.write_text("\n".join(["a great film , it was great", "an awful film , it was terrible"] * 30))
    cfg = {"model": tiny_model, "output_dir": str(tmp_path / "tapt"),
           "data": {"train": [str(corpus)], "validation_split": 0.2},
           "training": {"max_length": 32, "batch_size": 8, "max_steps": 2}}  # fmt: skip
    model_dir = pretrain(cfg).path / "model"
    classifier = ClozeClassifier.from_backbone(str(model_dir), "{text} It was {mask}.", VERBALIZER, ["neg", "pos"], 32)
    saved = load_file(model_dir / "model.safetensors")
    head = classifier.model.cls.predictions
    # The head is the one pretraining trained and saved (not a fresh one), its decoder tied to the word embeddings.
    assert torch.equal(head.transform.dense.weight, saved["cls.predictions.transform.dense.weight"])
    assert torch.equal(head.bias, saved["cls.predictions.bias"])
    assert head.decoder.weight.data_ptr() == classifier.model.bert.embeddings.word_embeddings.weight.data_ptr()
    assert classifier.probabilities(["a great film"]).shape == (1, 2)
