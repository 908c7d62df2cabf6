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
    with pytest.raises(UserError, match="tensorboard"):
        tunesmith.finetune({**tiny_config, "tracking": ["wandb"]})


def test_a_tracker_without_its_package_is_refused_before_the_run_folder(
    tiny_config: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tracking, "find_spec", lambda name: None)
    with pytest.raises(UserError, match="pip install tensorboard"):
        tunesmith.finetune({**tiny_config, "tracking": ["tensorboard"]})
    assert not Path(tiny_config["output_dir"]).exists()
