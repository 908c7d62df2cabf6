"""Zero-shot and contrastive runs: a run folder like any other, reloaded to predict and evaluate the same."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import tunesmith
from tunesmith.errors import UserError


@pytest.fixture
def contrastive_config(tiny_config: dict) -> dict:
    return {
        **tiny_config,
        "method": "contrastive",
        "data": {**tiny_config["data"], "shots_per_class": 8},
        "contrastive": {"epochs": 5, "batch_size": 8, "learning_rate": 1e-3},
    }


def test_a_contrastive_run_trains_on_k_per_class_saves_and_reloads(contrastive_config: dict) -> None:
    run = tunesmith.finetune(contrastive_config)
    folder = run.path
    assert json.loads((folder / "status.json").read_text())["status"] == "finished"
    for name in ("config.yaml", "labels.json", "metrics.json", "history.jsonl", "report.md", "head.safetensors"):
        assert (folder / name).is_file(), name
    assert (folder / "model" / "config.json").is_file()
    training = run.metrics["training"]
    # 80 rows, 10% carved for validation and test each, then 8 per label: 16 rows, 2 batches, 5 epochs.
    assert training["examples"]["train"] == 16 and training["train_examples_per_class"] == {"neg": 8, "pos": 8}
    assert training["steps"] == 10
    assert len((folder / "history.jsonl").read_text().splitlines()) == 10 + 2
    predictor = tunesmith.load(folder)
    texts = ["a wonderful one", "honestly a dreadful experience"]
    results = predictor.predict(texts)
    assert [set(r) for r in results] == [{"label", "score", "probabilities"}] * 2
    assert sum(results[0]["probabilities"].values()) == pytest.approx(1.0)
    # Reloaded, the run scores its test rows as it did when it was trained.
    test_file = Path(contrastive_config["data"]["train"])
    metrics = predictor.evaluate(test_file)
    assert 0.0 <= metrics["accuracy"] <= 1.0 and set(metrics["per_class"]) == {"neg", "pos"}
    again = tunesmith.load(folder).predict(texts)
    for before, after in zip(results, again, strict=True):
        assert after["probabilities"] == pytest.approx(before["probabilities"])


def test_a_zero_shot_run_keeps_only_its_head_and_predicts_by_label_similarity(tiny_config: dict) -> None:
    config = {**tiny_config, "method": "zero_shot", "zero_shot": {"templates": ["{label}", "it was {label}"]}}
    run = tunesmith.finetune(config)
    assert not (run.path / "model").exists() and (run.path / "head.safetensors").is_file()
    assert run.metrics["training"]["trainable_parameters"] == 0
    assert "accuracy" in run.metrics["test"]
    predictor = tunesmith.load(run.path)
    # The label "pos" is itself a text: it is most similar to its own prompt's label.
    probabilities = predictor.probabilities(["pos"])
    assert predictor.names[int(np.argmax(probabilities))] == "pos"


def test_methods_other_than_finetune_refuse_pairs_other_tasks_and_strategies(tiny_config: dict) -> None:
    for change, message in [
        ({"task": "regression"}, "classifies single texts"),
        ({"data": {**tiny_config["data"], "text_pair_column": "text"}}, "not pairs"),
        ({"strategy": "lora"}, "applies to method finetune"),
        ({"zero_shot": {"templates": ["no placeholder"]}}, "placeholder"),
    ]:
        with pytest.raises(UserError, match=message):
            tunesmith.finetune({**tiny_config, "method": "zero_shot", **change})
    with pytest.raises(UserError, match="no class per example"):
        tunesmith.finetune({**tiny_config, "task": "regression", "data": {**tiny_config["data"], "shots_per_class": 4}})


def test_export_and_resume_refuse_a_zero_shot_run_with_exit_code_2(
    tiny_config: dict, capsys: pytest.CaptureFixture
) -> None:
    from tunesmith.cli import main

    run = tunesmith.finetune({**tiny_config, "method": "zero_shot"})
    assert main(["export", str(run.path), "--format", "hf"]) == 2
    assert "method zero_shot run, which export does not handle" in capsys.readouterr().err
    with pytest.raises(UserError, match="keeps no checkpoints"):
        tunesmith.finetune({**tiny_config, "method": "zero_shot"}, resume=True)
