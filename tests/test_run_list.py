"""`tunesmith runs`: every run folder under a folder, one row each, sortable, as a table or JSON."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tunesmith.cli import main
from tunesmith.run_list import list_runs, table


def fake_run(folder: Path, status: str, time: str, task: str = "classification", **scores: float) -> Path:
    """A run folder as tunesmith leaves one: status.json, config.yaml and, when finished, metrics.json."""
    folder.mkdir(parents=True)
    (folder / "status.json").write_text(json.dumps({"status": status, "time": time}))
    (folder / "config.yaml").write_text(yaml.safe_dump({"task": task, "model": "minilm", "strategy": "lora"}))
    if scores:
        metrics = {split: {"accuracy": value, "f1_macro": value - 0.01} for split, value in scores.items()}
        (folder / "metrics.json").write_text(json.dumps({**metrics, "training": {"train_time_s": 12.5}}))
    return folder


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    fake_run(root / "b", "finished", "2026-12-01T10:00:00+0000", validation=0.91, test=0.9)
    fake_run(root / "a", "finished", "2026-12-03T10:00:00+0000", validation=0.88, test=0.87)
    fake_run(root / "c", "failed", "2026-12-04T10:00:00+0000")
    fake_run(root / "sst2-compare" / "full", "finished", "2026-12-02T10:00:00+0000", validation=0.95)
    (root / "notes").mkdir()
    (root / "notes" / "status.json").write_text('{"status": "finished"}')  # no time: not tunesmith's
    return root


def test_every_run_once_newest_first_and_sortable(runs: Path) -> None:
    rows = list_runs(runs)
    assert [row["run"] for row in rows] == ["c", "a", "sst2-compare/full", "b"]
    assert rows[1]["validation"] == 0.88 and rows[1]["test_metrics"] == {"accuracy": 0.87, "f1_macro": 0.86}
    assert rows[0]["status"] == "failed" and rows[0]["validation"] is None and rows[0]["train_s"] is None
    # Best first; a run without the value comes last whatever the order.
    assert [row["run"] for row in list_runs(runs, "validation")] == ["sst2-compare/full", "b", "a", "c"]
    assert [row["run"] for row in list_runs(runs, "run")] == ["a", "b", "c", "sst2-compare/full"]


def test_the_table_and_json_from_the_command_line(runs: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["runs", str(runs), "--sort", "test"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "run",
        "status",
        "task",
        "model",
        "strategy",
        "metric",
        "validation",
        "test",
        "train_s",
        "time",
    ]
    assert lines[2].split()[:8] == ["b", "finished", "classification", "minilm", "lora", "accuracy", "0.9100", "0.9000"]
    assert lines[2].split()[8] == "12.5"
    assert [line.split()[0] for line in lines[2:]] == ["b", "a", "c", "sst2-compare/full"]
    assert main(["runs", str(runs), "--json"]) == 0
    assert [row["run"] for row in json.loads(capsys.readouterr().out)] == ["c", "a", "sst2-compare/full", "b"]


def test_a_real_finished_run_is_read_back(trained_run: Path, tmp_path: Path) -> None:
    shutil.copytree(trained_run, tmp_path / "runs" / "tiny")
    (row,) = list_runs(tmp_path / "runs")
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert row["status"] == "finished" and row["task"] == "classification" and row["strategy"] == "full"
    assert row["validation"] == metrics["validation"]["accuracy"] and row["test"] == metrics["test"]["accuracy"]
    assert row["train_s"] == metrics["training"]["train_time_s"]
    # A folder that is itself a run lists just that run.
    assert [r["run"] for r in list_runs(tmp_path / "runs" / "tiny")] == ["tiny"]


def test_bad_folder_or_column_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["runs", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["runs", str(tmp_path), "--sort", "colour"]) == 2
    assert "--sort 'colour'" in capsys.readouterr().err
    assert table([]) == "No runs found."
