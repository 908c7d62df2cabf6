from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

import tunesmith
from tunesmith.errors import UserError


def test_finetune_then_load_and_predict(tiny_config: dict) -> None:
    run = tunesmith.finetune(tiny_config)
    assert run.path == Path(tiny_config["output_dir"])
    assert 0.0 <= run.metrics["test"]["accuracy"] <= 1.0
    predictor = tunesmith.load(run.path)
    results = predictor.predict(["a superb experience", "what a dreadful one"])
    assert len(results) == 2
    for result in results:
        assert result["label"] in {"neg", "pos"}
        assert sum(result["probabilities"].values()) == pytest.approx(1.0)
    assert predictor.predict("one text")[0]["label"] in {"neg", "pos"}


def test_plain_transformers_reproduces_the_predictions(tiny_config: dict) -> None:
    run = tunesmith.finetune(tiny_config)
    texts = ["the film was great one", "our trip was awful experience", "honestly a lovely one", "x"]
    ours = tunesmith.load(run.path).predict(texts)
    model = AutoModelForSequenceClassification.from_pretrained(run.path / "model").eval()
    tokenizer = AutoTokenizer.from_pretrained(run.path / "model")
    with torch.no_grad():
        logits = model(**tokenizer(texts, padding=True, return_tensors="pt")).logits
    probabilities = torch.softmax(logits, dim=-1)
    for row, theirs in zip(ours, probabilities, strict=True):
        assert model.config.id2label[int(theirs.argmax())] == row["label"]
        assert [row["probabilities"][model.config.id2label[i]] for i in range(2)] == pytest.approx(
            theirs.tolist(), abs=1e-5
        )


def test_bad_metric_for_best_is_caught_before_training(tiny_config: dict) -> None:
    tiny_config["training"]["metric_for_best"] = "acuracy"
    with pytest.raises(UserError, match="not a classification metric"):
        tunesmith.finetune(tiny_config)
    assert not Path(tiny_config["output_dir"]).exists()


def test_failed_run_is_marked_failed(tiny_config: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from tunesmith import api

    def explode(*args, **kwargs):
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(api, "fit", explode)
    with pytest.raises(RuntimeError):
        tunesmith.finetune(tiny_config)
    status = json.loads((Path(tiny_config["output_dir"]) / "status.json").read_text())
    assert status == {**status, "status": "failed", "error": "simulated crash"}
    assert not (Path(tiny_config["output_dir"]) / "metrics.json").exists()
