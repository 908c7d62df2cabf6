"""Two CPU processes (torchrun, gloo): the run spans both, no example is counted twice, and
two processes with batch size B train the same run as one process with batch size 2B."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.causal.conftest import write_jsonl
from tests.conftest import write_sentiment_csv

# Each test launches two training processes under torchrun.
pytestmark = pytest.mark.slow


def cpu_processes_env(tmp_path: Path) -> dict[str, str]:
    # No visible GPU: these tests are about CPU processes, also on a machine with one GPU,
    # which two processes cannot share.
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TUNESMITH_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1",
            "CUDA_VISIBLE_DEVICES": ""}  # fmt: skip


def test_two_processes_train_one_run_and_evaluate_each_example_once(tiny_model: str, tmp_path: Path) -> None:
    train = write_sentiment_csv(tmp_path / "train.csv", rows_per_label=36)
    lines = write_sentiment_csv(tmp_path / "test.csv", rows_per_label=5, seed=1).read_text().splitlines()
    test = tmp_path / "test.csv"
    test.write_text("\n".join(lines[:10]) + "\n")  # 9 rows: in batches of 2, one process gets a padded shard
    run_dir = tmp_path / "run"
    env = cpu_processes_env(tmp_path)
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
    # Each example's record once, back in its own order, and the same calibration error.
    records = [json.loads(line) for line in (run_dir / "predictions.jsonl").read_text().splitlines()]
    assert [r["line"] for r in records if r["split"] == "test"] == list(range(2, 11))
    assert metrics["test"]["ece"] == pytest.approx(alone["ece"], abs=1e-5)


def train_command(train: Path, validation: Path, run_dir: Path, model: str, batch_size: int) -> list[str]:
    return [
        "-m", "tunesmith", "train", "--data", str(train), "--validation", str(validation), "--model", model,
        "--output-dir", str(run_dir), "--epochs", "2", "--batch-size", str(batch_size), "--learning-rate", "2e-3",
        "training.logging_steps=1", "training.eval_steps=6", "training.eval_batch_size=4", "data.test_split=0",
    ]  # fmt: skip


def losses(run_dir: Path) -> tuple[list[float], list[float]]:
    records = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    train = [record["loss"] for record in records if "split" not in record and "loss" in record]
    validation = [record["loss"] for record in records if record.get("split") == "validation"]
    return train, validation


def test_two_processes_follow_the_loss_curve_of_one_with_the_same_global_batch(tiny_model: str, tmp_path: Path) -> None:
    train = write_sentiment_csv(tmp_path / "train.csv", rows_per_label=36)
    validation = write_sentiment_csv(tmp_path / "validation.csv", rows_per_label=7, seed=1)
    env = cpu_processes_env(tmp_path)
    one, two = tmp_path / "one", tmp_path / "two"
    single = subprocess.run(
        [sys.executable, *train_command(train, validation, one, tiny_model, batch_size=8)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert single.returncode == 0, single.stderr[-3000:]
    launched = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
         *train_command(train, validation, two, tiny_model, batch_size=4)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert launched.returncode == 0, launched.stderr[-3000:]
    one_train, one_validation = losses(one)
    two_train, two_validation = losses(two)
    # 72 rows in global batches of 8: 9 steps per epoch, each logged; evaluations at steps 6, 9, 12, 18.
    assert len(one_train) == len(two_train) == 18
    assert len(one_validation) == len(two_validation) >= 4
    # The loss moves by far more than this over training: the curves are the same curve.
    assert max(one_train) - min(one_train) > 0.05
    assert two_train == pytest.approx(one_train, abs=1e-4)
    assert two_validation == pytest.approx(one_validation, abs=1e-4)
    first = json.loads((one / "metrics.json").read_text())["validation"]
    second = json.loads((two / "metrics.json").read_text())["validation"]
    assert second["accuracy"] == first["accuracy"]
    assert second["loss"] == pytest.approx(first["loss"], abs=1e-4)


def test_two_processes_fine_tune_a_decoder_as_one_does_with_tokens_shared_unevenly(
    tiny_gpt2: str, tmp_path: Path
) -> None:
    # Completions of 1 to 30 words: the two processes' halves of a batch hold different numbers of loss
    # tokens, and the step must still be the mean over all of them (tunesmith/train/loop.py `_mean_gradient`).
    words = ["the", "cat", "sat", "on", "a", "mat", "and", "ran", "far", "away"]
    text = " ".join(words * 3)
    rows = [{"prompt": f"{words[i % 10]} {words[(3 * i) % 10]}", "completion": " " + text[: 4 + (i * 37) % 90]}
            for i in range(64)]  # fmt: skip
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    validation = write_jsonl(tmp_path / "validation.jsonl", rows[:12])
    env = cpu_processes_env(tmp_path)

    def command(run_dir: Path, batch_size: int) -> list[str]:
        return [
            "-m", "tunesmith", "train", "--data", str(train), "--validation", str(validation), "--model", tiny_gpt2,
            "--output-dir", str(run_dir), "--epochs", "2", "--batch-size", str(batch_size), "--learning-rate", "3e-3",
            "task=causal", "causal.packing=false", "causal.evaluation_generations=0", "training.eval_steps=4",
            "training.max_length=64", "data.test_split=0", "training.group_by_length=true",
        ]  # fmt: skip

    one, two = tmp_path / "one", tmp_path / "two"
    single = subprocess.run([sys.executable, *command(one, 8)], env=env, capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-3000:]
    launched = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", *command(two, 4)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert launched.returncode == 0, launched.stderr[-3000:]
    _, one_validation = losses(one)
    _, two_validation = losses(two)
    assert len(one_validation) == len(two_validation) >= 4
    assert max(one_validation) - min(one_validation) > 0.05
    # To float rounding, which AdamW amplifies over the steps (4.5e-5 relative by the fifth evaluation).
    assert two_validation == pytest.approx(one_validation, rel=1e-4)
