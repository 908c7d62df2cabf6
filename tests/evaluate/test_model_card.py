"""model/README.md is a Hugging Face model card that huggingface_hub reads back, with metrics.json's figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from tunesmith.config import RunConfig
from tunesmith.evaluate import model_card
from tunesmith.tasks import TASKS


def test_a_finished_run_has_a_card_the_hub_loader_parses(trained_run: Path) -> None:
    card = ModelCard.load(trained_run / "model" / "README.md", ignore_metadata_errors=False)
    metrics = json.loads((trained_run / "metrics.json").read_text())
    data = card.data
    assert data.library_name == "transformers" and data.pipeline_tag == "text-classification"
    assert data.license == "other" and "tunesmith" in data.tags
    assert data.base_model is None  # a local folder: the Hub knows nothing of it
    results = {(r.dataset_split, r.metric_type): r.metric_value for r in data.eval_results}
    for split in ("validation", "test"):
        for key in ("accuracy", "f1_macro", "f1", "mcc"):
            assert results[(split, key)] == pytest.approx(metrics[split][key], abs=0)
    assert f"| accuracy | {metrics['validation']['accuracy']:.4f} | {metrics['test']['accuracy']:.4f} |" in card.text


def fake_metrics(split_metrics: dict) -> dict:
    training = {
        "epochs": 3,
        "steps": 30,
        "train_time_s": 12.0,
        "trainable_parameters": 10,
        "total_parameters": 100,
        "device": "cpu",
        "examples": {"train": 80, "validation": 10},
    }
    return {"validation": split_metrics, "training": training}


@pytest.mark.parametrize(
    ("task", "scores", "pipeline"),
    [
        ("ner", {"f1": 0.8812, "precision": 0.87, "recall": 0.89, "accuracy": 0.97}, "token-classification"),
        ("regression", {"pearson": 0.873, "spearman": 0.871, "mse": 0.55, "mae": 0.58}, "text-classification"),
    ],
)
def test_cards_of_other_tasks_name_their_pipeline_and_metrics(task: str, scores: dict, pipeline: str) -> None:
    cfg = RunConfig.model_validate({"name": "x", "task": task, "data": {"train": "../shared/data/stsb/train.tsv"}})
    text = model_card.render(cfg, TASKS[task], fake_metrics(scores), ["score"])
    card = ModelCard(text, ignore_metadata_errors=False)
    assert card.data.pipeline_tag == pipeline and card.data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert card.data.datasets == ["stsb"]
    assert {r.metric_type: r.metric_value for r in card.data.eval_results} == scores
