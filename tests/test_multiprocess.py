"""Two CPU processes (torchrun, gloo): the run spans both, and no example is counted twice.

Whether two processes follow the loss curve of one process with the same global batch is
not asserted yet: the length-grouped sampler forms different global batches then.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import write_sentiment_csv


def test_two_processes_train_one_run_and_evaluate_each_example_once(tiny_model: str, tmp_path: Path) -> None:
    train = write_sentiment_csv(tmp_path / "train.csv", rows_per_label=36)
    lines = write_sentiment_csv(tmp_path / "test.csv", rows_per_label=5, seed=1).read_text().splitlines()
    test = tmp_path / "test.csv"
    test.write_text("\n".join(lines[:10]) + "\n")  # 9 rows: in batches of 2, one process gets a padded shard
    run_dir = tmp_path / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TUNESMITH_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    launched = subprocess.run(
        [
            sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "tunesmith", "train",
            "--data", str(train), "--validation", str(test), "--test", str(test), "--model", tiny_model,
            "--output-dir", str(run_dir), "--epochs", "2", "--batch-size", "4", "--learning-rate", "2e-3",
            "training.eval_batch_size=2",
        ],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert launched.returncode == 0, launched.stderr[-3000:]
    assert launched.stdout.count("Run finished") == 1  # one summary, from the main process
    metrics = json.loads((run_dir / "metrics.json").read_text())
    training = metrics["training"]
    # 72 training rows, 4 per process and step: 9 steps per epoch (each process alone would take 18).
    assert training["processes"] == 2 and training["steps"] == 18
    # Gathered from 2 processes, the test metrics must be what one process computes on the same
    # model: nothing duplicated by the padded shard, nothing dropped.
    single = subprocess.run(
        [sys.executable, "-m", "tunesmith", "evaluate", str(run_dir), "--data", str(test), "--output",
         str(tmp_path / "single.json")],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert single.returncode == 0, single.stderr[-3000:]
    alone = json.loads((tmp_path / "single.json").read_text())
    assert sum(row["support"] for row in metrics["test"]["per_class"].values()) == 9
    assert metrics["test"]["per_class"] == alone["per_class"]
    assert metrics["test"]["accuracy"] == alone["accuracy"]
    assert metrics["test"]["loss"] == pytest.approx(alone["loss"], rel=1e-5)
