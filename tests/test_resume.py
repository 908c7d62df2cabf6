"""Kill a real `tunesmith train` process (kill -9, SIGTERM, SIGINT), resume it, and compare.

Each run is a separate process started the way a user starts it. The resumed run must
reproduce the uninterrupted run's loss history and final metrics exactly: on one CPU
with the same thread count every operation is deterministic, and the checkpoint holds
everything the run's numbers depend on (weights, optimizer, scheduler, every random
generator, the position in the data, the early-stopping state), so no tolerance is
needed. Dropout is on, so a generator restored wrongly would show.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import write_sentiment_csv

# Each test launches and kills real training processes (tens of seconds).
pytestmark = pytest.mark.slow

# 64 training rows, batch 4: 16 steps per epoch, 64 in all; a checkpoint every 3 steps
# and at each epoch end (where validation runs).
SETTINGS = [
    "--epochs",
    "4",
    "--batch-size",
    "4",
    "--learning-rate",
    "1e-3",
    "training.logging_steps=1",
    "training.save_steps=3",
    "training.warmup_ratio=0.0",
]


@pytest.fixture(scope="module")
def setup(tiny_dropout_model: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("resume")
    data = write_sentiment_csv(folder / "reviews.csv")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TUNESMITH_CACHE": str(folder / "cache")}
    args = ["train", "--data", str(data), "--model", tiny_dropout_model, *SETTINGS]
    reference = folder / "reference"
    finished = subprocess.run(command(args, reference), env=env, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    return {"args": args, "env": env, "reference": reference, "folder": folder}


def command(args: list[str], output: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "tunesmith", *args, "--output-dir", str(output), *extra]


def start(setup: dict, output: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        command(setup["args"], output, *extra),
        env=setup["env"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def latest_checkpoint(output: Path) -> int:
    folder = output / "checkpoints"
    steps = [int(p.name.removeprefix("step-")) for p in folder.glob("step-*")] if folder.is_dir() else []
    return max(steps, default=-1)


def signal_after_checkpoint(process: subprocess.Popen, output: Path, step: int, signum: int) -> None:
    """Send `signum` as soon as a checkpoint at `step` or later exists (the run is then mid-training)."""
    deadline = time.monotonic() + 300
    while latest_checkpoint(output) < step:
        assert process.poll() is None, f"the run ended before step {step}: {process.communicate()[1]}"
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.005)
    process.send_signal(signum)


def status(output: Path) -> dict:
    return json.loads((output / "status.json").read_text())


def training_history(output: Path) -> list[dict]:
    """history.jsonl without the wall-clock speed, the one figure that may differ."""
    records = [json.loads(line) for line in (output / "history.jsonl").read_text().splitlines()]
    return [{k: v for k, v in record.items() if k != "samples_per_s"} for record in records]


def assert_same_run(output: Path, reference: Path) -> None:
    assert status(output)["status"] == "finished"
    assert training_history(output) == training_history(reference)
    ours, theirs = (json.loads((folder / "metrics.json").read_text()) for folder in (output, reference))
    for split in ("validation", "test"):
        assert ours[split] == theirs[split], split
    for key in ("steps", "epochs", "best_step", "best_metric"):
        assert ours["training"][key] == theirs["training"][key], key
    assert not (output / "checkpoints").exists()  # removed once finished (training.keep_checkpoints)


def checkpoint_steps(output: Path) -> list[int]:
    return sorted(int(p.name.removeprefix("step-")) for p in (output / "checkpoints").glob("step-*"))


def test_kill_9_at_several_steps_then_resume_matches_an_uninterrupted_run(setup: dict) -> None:
    output = setup["folder"] / "killed"
    resumed_from: list[int] = []
    corrupted = None
    # Killed mid-epoch, just after an epoch end and late in the last epoch; each time resumed.
    for step in (3, 17, 41):
        process = start(setup, output)
        signal_after_checkpoint(process, output, step, signal.SIGKILL)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == -signal.SIGKILL
        assert status(output)["status"] == "running"  # what a killed run leaves; it is not finished
        if resumed_from:
            assert f"Resuming {output} from step {resumed_from[-1]}" in stderr
        if corrupted:
            assert f"Skipping checkpoint step-{corrupted}: model.safetensors does not match its SHA-256" in stderr
        resumed_from.append(latest_checkpoint(output))
        if step == 17:
            # A bad disk: the newest checkpoint is corrupted, so the next run falls back one.
            *_, previous, corrupted = checkpoint_steps(output)
            weights = output / "checkpoints" / f"step-{corrupted}" / "model.safetensors"
            data = bytearray(weights.read_bytes())
            data[-1] ^= 0xFF
            weights.write_bytes(bytes(data))
            resumed_from[-1] = previous
    finished = subprocess.run(
        command(setup["args"], output, "--resume"), env=setup["env"], capture_output=True, text=True, timeout=300
    )
    assert finished.returncode == 0, finished.stderr
    assert f"Resuming {output} from step {resumed_from[-1]}" in finished.stderr
    assert resumed_from[0] >= 3 and resumed_from[-1] >= 41
    assert_same_run(output, setup["reference"])


@pytest.mark.parametrize(("signum", "exit_code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_stop_signal_checkpoints_and_exits_with_the_shell_code(setup: dict, signum: int, exit_code: int) -> None:
    output = setup["folder"] / f"stopped-{signum}"
    process = start(setup, output)
    signal_after_checkpoint(process, output, 10, signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == exit_code
    record = status(output)
    name = signal.Signals(signum).name
    assert record["status"] == "interrupted" and record["signal"] == name
    # The checkpoint is written at the step where the signal arrived, then the run stops.
    stopped_at = latest_checkpoint(output)
    assert record["checkpoint"] == str(output / "checkpoints" / f"step-{stopped_at}")
    assert f"interrupted by {name}; checkpoint {record['checkpoint']}" in stderr and "Traceback" not in stderr
    assert not (output / "metrics.json").exists()
    if signum == signal.SIGTERM:
        finished = subprocess.run(command(setup["args"], output), env=setup["env"], capture_output=True, timeout=300)
        assert finished.returncode == 0, finished.stderr
        assert_same_run(output, setup["reference"])
