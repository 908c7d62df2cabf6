"""Which trained strategies each format holds: virtual tokens fold into neither; bottleneck adapters into ONNX
only, where the graph carries them as they are."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import tunesmith
from tests.conftest import train_once
from tests.export.test_export import TEXTS, assert_same_predictions, exported
from tunesmith.cli import main


@pytest.fixture(scope="module")
def prompt_run(tiny_model: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_once(tmp_path_factory, tiny_model, strategy="prompt")


@pytest.mark.parametrize("fmt", ["hf", "onnx"])
def test_a_prompt_tuned_run_has_no_export_and_says_why(
    prompt_run: Path, tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture
) -> None:
    output = tmp_path / "export"
    assert main(["export", str(prompt_run), "--format", fmt, "--output", str(output)]) == 2
    error = capsys.readouterr().err
    assert "strategy prompt" in error and "virtual tokens" in error and f"--format {fmt}" in error
    assert list(tmp_path.iterdir()) == []


def test_bottleneck_adapters_export_to_onnx_and_not_to_hf(
    tiny_model: str, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    run = train_once(tmp_path_factory, tiny_model, strategy="adapter")
    assert main(["export", str(run), "--format", "hf", "--output", str(tmp_path / "hf")]) == 2
    assert "--format onnx" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
    export = exported(run, tmp_path / "onnx", "onnx")
    parity = json.loads((export / "parity.json").read_text())
    assert parity["passed"] and parity["max_abs_logit_diff"] <= 1e-4 and parity["agreement"] == 1.0
    assert_same_predictions(tunesmith.load(run).predict(TEXTS), tunesmith.load(export).predict(TEXTS), 1e-5)
