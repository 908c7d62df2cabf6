"""ONNX exports of regression, multi-label and sentence-pair runs: the gate's figures, and predictions through
onnxruntime equal to PyTorch's, with the task's state (target scaling, thresholds, pair order) carried along."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import tunesmith
from tests.conftest import write_multilabel_csv, write_regression_csv
from tests.data.test_augment import write_pairs_csv
from tests.export.test_export import exported
from tunesmith.export import GateFailed, export_run
from tunesmith.export.parity import Gate
from tunesmith.export.runtime import OnnxModel

REGRESSION_TEXTS = [
    "great",
    "superb lovely awful",
    "awful terrible boring and then a long list of words that goes past the traced example's length",
    "great superb lovely",
]
THRESHOLD = 0.3
MULTILABEL_TEXTS = [
    "football",
    "we talked football and piano today",
    "pizza",
    "today we talked about soup and golf and violin and guitar, then went on talking for a long while about it",
]


def train(tiny_model: str, folder: Path, task: str, data: dict[str, Any], **sections: Any) -> Path:
    config = {
        "model": tiny_model,
        "task": task,
        "output_dir": str(folder / task),
        "data": data,
        "training": {"epochs": 4, "batch_size": 8, "learning_rate": 3e-3, "warmup_ratio": 0.0},
        **sections,
    }
    with pytest.MonkeyPatch.context() as patch:
        # As the autouse fixture sets for each test, for the module-wide runs below.
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("TRANSFORMERS_OFFLINE", "1")
        patch.setenv("TUNESMITH_CACHE", str(folder / "cache"))
        return tunesmith.finetune(config).path


@pytest.fixture(scope="module")
def regression_run(tiny_model: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("regression")
    data = {"train": str(write_regression_csv(folder / "scores.csv")), "label_column": "score"}
    # Scaled targets: the export must carry the shift and scale that turn the logit back into a score.
    return train(tiny_model, folder, "regression", data, regression={"target_scaling": "standard"})


@pytest.fixture(scope="module")
def multilabel_run(tiny_model: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("multilabel")
    data = {"train": str(write_multilabel_csv(folder / "topics.csv")), "label_column": "topics"}
    # Not the default threshold: the export must decide each label at the run's threshold, not at 0.5.
    return train(tiny_model, folder, "multilabel", data, multilabel={"threshold": THRESHOLD})


def check_parity(export: Path, metric: str, decisions: bool) -> dict[str, Any]:
    parity = json.loads((export / "parity.json").read_text())
    assert parity["passed"] and parity["failures"] == [] and parity["examples"] > 0
    assert parity["metric"] == metric
    assert parity["max_abs_logit_diff"] <= 1e-4
    assert parity["metric_after"] == pytest.approx(parity["metric_before"], abs=1e-6)
    # Regression has no decisions to agree on; multi-label counts each label's on/off.
    assert parity["agreement"] == (1.0 if decisions else None)
    return parity


def test_a_regression_export_predicts_the_runs_values_in_the_targets_units(
    regression_run: Path, tmp_path: Path
) -> None:
    export = exported(regression_run, tmp_path / "onnx", "onnx")
    check_parity(export, "pearson", decisions=False)
    state = json.loads((export / "task.json").read_text())
    assert state["scale"] != pytest.approx(1.0) and state["shift"] != pytest.approx(0.0)
    run, onnx = tunesmith.load(regression_run), tunesmith.load(export)
    assert isinstance(onnx.model, OnnxModel)
    for batch in (REGRESSION_TEXTS[:1], REGRESSION_TEXTS[2:3], REGRESSION_TEXTS):
        ours, theirs = run.predict(batch), onnx.predict(batch)
        assert [set(row) for row in theirs] == [{"value"}] * len(batch)
        assert [row["value"] for row in theirs] == pytest.approx([row["value"] for row in ours], abs=1e-4)
    values = [row["value"] for row in onnx.predict(REGRESSION_TEXTS)]
    # Unscaled, the values would sit near the standardised targets' 0; the targets here run from 0 to 3.
    assert 0.5 < sum(values) / len(values) < 2.5


def test_a_regression_gate_fails_on_the_logit_difference_it_has_in_place_of_agreement(
    regression_run: Path, tmp_path: Path
) -> None:
    with pytest.raises(GateFailed, match=r"max \|Δlogit\|") as failed:
        export_run(regression_run, "onnx", "int8", tmp_path / "int8", gate=Gate(0.0, 0.999, None))
    # A minimum agreement cannot fail a task without decisions.
    assert "--min-agreement" not in str(failed.value)
    assert list(tmp_path.iterdir()) == []


def test_a_multilabel_export_decides_each_label_at_the_runs_thresholds(multilabel_run: Path, tmp_path: Path) -> None:
    export = exported(multilabel_run, tmp_path / "onnx", "onnx")
    check_parity(export, "f1_macro", decisions=True)
    run, onnx = tunesmith.load(multilabel_run), tunesmith.load(export)
    assert isinstance(onnx.model, OnnxModel)
    thresholds = json.loads((export / "task.json").read_text())["thresholds"]
    assert thresholds == run.task.thresholds == onnx.task.thresholds == [THRESHOLD] * 3
    for batch in (MULTILABEL_TEXTS[:1], MULTILABEL_TEXTS[3:], MULTILABEL_TEXTS):
        for ours, theirs in zip(run.predict(batch), onnx.predict(batch), strict=True):
            assert theirs["labels"] == ours["labels"]
            assert set(theirs["probabilities"]) == {"food", "music", "sport"}
            for name, probability in ours["probabilities"].items():
                assert theirs["probabilities"][name] == pytest.approx(probability, abs=1e-5)
            on = [name for name, probability in theirs["probabilities"].items() if probability >= THRESHOLD]
            assert theirs["labels"] == on
    assert any(row["labels"] for row in onnx.predict(MULTILABEL_TEXTS)), "no label decided: nothing compared"


def test_a_multilabel_int8_export_keeps_the_label_decisions_its_gate_checks(
    multilabel_run: Path, tmp_path: Path
) -> None:
    import onnx

    export = exported(multilabel_run, tmp_path / "int8", "onnx", "int8")
    parity = json.loads((export / "parity.json").read_text())
    gate = Gate.default(quantized=True)
    assert parity["passed"] and parity["agreement"] >= gate.min_agreement
    assert parity["metric_drop"] <= gate.max_metric_drop
    graph = onnx.load(str(export / "model" / "model.onnx")).graph
    assert sum(node.op_type == "MatMulInteger" for node in graph.node) == 12  # 2 layers x 6 dense matmuls
    run, quantised = tunesmith.load(multilabel_run), tunesmith.load(export)
    for ours, theirs in zip(run.predict(MULTILABEL_TEXTS), quantised.predict(MULTILABEL_TEXTS), strict=True):
        assert theirs["labels"] == ours["labels"]
        for name, probability in ours["probabilities"].items():
            assert theirs["probabilities"][name] == pytest.approx(probability, abs=0.05)
    manifest = json.loads((export / "export.json").read_text())
    assert manifest["task"] == "multilabel" and manifest["quantize"] == "int8"


def test_a_sentence_pair_export_scores_both_orders_as_the_run_does(tiny_model: str, tmp_path: Path) -> None:
    data = {
        "train": str(write_pairs_csv(tmp_path / "pairs.csv")),
        "text_column": "first",
        "text_pair_column": "second",
        "label_column": "same",
        # Each pair scored both ways round and averaged: the export's predictor must do the same.
        "average_pair_orders": True,
    }
    run = train(tiny_model, tmp_path, "classification", data)
    export = exported(run, tmp_path / "onnx", "onnx")
    check_parity(export, "accuracy", decisions=True)
    import onnx

    graph = onnx.load(str(export / "model" / "model.onnx")).graph
    assert "token_type_ids" in [item.name for item in graph.input]
    texts, pairs = ["the red one", "the blue one", "the green one"], ["a red thing", "a black thing", "a green thing"]
    ours, theirs = tunesmith.load(run).predict(texts, pairs), tunesmith.load(export).predict(texts, pairs)
    assert [row["label"] for row in theirs] == [row["label"] for row in ours]
    assert [row["score"] for row in theirs] == pytest.approx([row["score"] for row in ours], abs=1e-5)
    swapped = tunesmith.load(export).predict(pairs, texts)
    assert [row["score"] for row in swapped] == pytest.approx([row["score"] for row in theirs], abs=1e-5)
