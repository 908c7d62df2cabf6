"""tracking: [tensorboard]: the history's records as TensorBoard scalars in the run folder; off by default."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

import tunesmith
from tunesmith.errors import UserError
from tunesmith.train import tracking


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder)).Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_tensorboard_receives_the_history_records_as_they_are_written(tiny_config: dict) -> None:
    run = tunesmith.finetune({**tiny_config, "tracking": ["tensorboard"]}).path
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    found = scalars(run / "tensorboard")
    steps = [r for r in history if "split" not in r]
    evaluations = [r for r in history if r.get("split") == "validation" and not r.get("final")]
    assert steps and evaluations
    assert found["train/loss"] == [(r["step"], pytest.approx(r["loss"])) for r in steps]
    assert found["validation/accuracy"] == [(r["step"], pytest.approx(r["accuracy"])) for r in evaluations]


def test_no_tracker_writes_anything_by_default(trained_run: Path) -> None:
    assert yaml.safe_load((trained_run / "config.yaml").read_text())["tracking"] == []
    assert not (trained_run / "tensorboard").exists()


def test_an_unknown_tracker_is_refused_with_the_known_ones(tiny_config: dict) -> None:
    with pytest.raises(UserError, match="tensorboard.*wandb.*mlflow"):
        tunesmith.finetune({**tiny_config, "tracking": ["comet"]})


def test_a_tracker_without_its_package_is_refused_before_the_run_folder(
    tiny_config: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tracking, "find_spec", lambda name: None)
    with pytest.raises(UserError, match="pip install tensorboard"):
        tunesmith.finetune({**tiny_config, "tracking": ["tensorboard"]})
    assert not Path(tiny_config["output_dir"]).exists()


@pytest.mark.parametrize("name", ["wandb", "mlflow"])
def test_wandb_and_mlflow_without_their_package_name_the_extra_before_the_run_folder(
    tiny_config: dict, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture, name: str
) -> None:
    from tunesmith.cli import main

    monkeypatch.setattr(tracking, "find_spec", lambda package: None)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({**tiny_config, "tracking": [name]}))
    assert main(["train", str(config)]) == 2
    assert f"pip install 'tunesmith[{name}]'" in capsys.readouterr().err
    assert not Path(tiny_config["output_dir"]).exists()


def test_params_are_the_config_flattened_one_level_and_cut_to_the_limits() -> None:
    config = {
        "name": None,
        "data": {"train": "a.csv", "label_names": ["neg", "pos"]},
        "zero_shot": {"descriptions": {"Sci/Tech": "science"}, "templates": ["{label} " + "x" * 50]},
        "tracking": [],
        "k" * 30: 1,
    }
    params = tracking.flat_params(config, key_limit=25, value_limit=40)
    assert params["data.train"] == "a.csv" and params["name"] is None and params["tracking"] == "[]"
    # Maps inside a section are data (label names may hold any character): JSON, not more keys.
    assert params["data.label_names"] == '["neg", "pos"]'
    assert params["zero_shot.descriptions"] == '{"Sci/Tech": "science"}'
    assert len(params["zero_shot.templates"]) == 40 and params["zero_shot.templates"].endswith("…")
    assert params["k" * 24 + "…"] == 1


def test_a_history_record_becomes_tensorboards_scalar_names() -> None:
    assert tracking.record_scalars({"step": 5, "loss": 0.5, "learning_rate": 1e-3, "stopped": True}) == (
        5,
        {"train/loss": 0.5, "train/learning_rate": 1e-3},
    )
    assert tracking.record_scalars({"step": 5, "split": "validation", "accuracy": 1}) == (
        5,
        {"validation/accuracy": 1.0},
    )


def history_of(run: Path) -> tuple[list[dict], list[dict]]:
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    steps = [r for r in history if "split" not in r and "loss" in r]
    evaluations = [r for r in history if r.get("split") == "validation" and not r.get("final")]
    return steps, evaluations


LONG_TEMPLATE = "{label} " + "long " * 1500  # 7,508 characters: beyond MLflow's 6,000 per value


def test_mlflow_logs_params_and_the_history_to_the_tracking_uri_the_user_set(
    tiny_config: dict, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    mlflow = pytest.importorskip("mlflow")
    # A file store: far quicker to open than the SQLite store a run makes by default (its migrations take seconds).
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    tiny_config["training"]["epochs"] = 1
    run = tunesmith.finetune({**tiny_config, "tracking": ["mlflow"], "zero_shot": {"templates": [LONG_TEMPLATE]}}).path
    assert not (run / tracking.MLFLOW_STORE).exists()
    client = mlflow.tracking.MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri())
    (found,) = client.search_runs([client.get_experiment_by_name(tracking.EXPERIMENT).experiment_id])
    assert found.info.status == "FINISHED" and found.info.run_name == run.name
    assert float(found.data.params["training.learning_rate"]) == tiny_config["training"]["learning_rate"]
    assert len(found.data.params["zero_shot.templates"]) == 6000  # cut, not dropped
    steps, evaluations = history_of(run)
    logged = client.get_metric_history(found.info.run_id, "train/loss")
    assert [(m.step, m.value) for m in logged] == [(r["step"], pytest.approx(r["loss"])) for r in steps]
    logged = client.get_metric_history(found.info.run_id, "validation/accuracy")
    assert [(m.step, m.value) for m in logged] == [(r["step"], pytest.approx(r["accuracy"])) for r in evaluations]


@pytest.mark.slow
def test_mlflow_writes_a_store_in_the_run_folder_by_default(tiny_config: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    tiny_config["training"]["epochs"] = 1
    run = tunesmith.finetune({**tiny_config, "tracking": ["mlflow"]}).path
    # The URI was the run's only: unset again after it.
    assert "MLFLOW_TRACKING_URI" not in __import__("os").environ
    client = mlflow.tracking.MlflowClient(tracking_uri=f"sqlite:///{run / tracking.MLFLOW_STORE}")
    (found,) = client.search_runs([client.get_experiment_by_name(tracking.EXPERIMENT).experiment_id])
    steps, _ = history_of(run)
    assert found.data.metrics["train/loss"] == pytest.approx(steps[-1]["loss"])
    assert found.info.artifact_uri.startswith((run / tracking.MLFLOW_ARTIFACTS).resolve().as_uri())


def test_wandb_runs_offline_into_the_run_folder(tiny_config: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("wandb")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    tiny_config["training"]["epochs"] = 1
    run = tunesmith.finetune({**tiny_config, "tracking": ["wandb"], "zero_shot": {"templates": [LONG_TEMPLATE]}}).path
    # Offline: the run's records stay in its folder, for `wandb sync` to upload if the user wants.
    (offline,) = (run / tracking.WANDB).glob("offline-run-*/run-*.wandb")
    # The records are protobuf in W&B's own log format, which the SDK has no public reader for: its keys are
    # there as written.
    records = offline.read_bytes()
    for key in ("training.learning_rate", "zero_shot.templates", "train/loss", "validation/accuracy"):
        assert key.encode() in records, key
    assert "WANDB_MODE" not in __import__("os").environ
