"""Continual runs end to end on the tiny model: an old run, then a new task or new data; and bad old runs."""

from __future__ import annotations

import csv
import json
import random
import shutil
from pathlib import Path

import pytest
import yaml

from tests.conftest import TOPICS, write_sentiment_csv
from tunesmith.api import finetune
from tunesmith.cli import main


def write_topics_csv(path: Path, rows: int = 60, seed: int = 0) -> Path:
    """One topic per text (sport, music, food): a three-class task unlike the sentiment one."""
    rng = random.Random(seed)
    names = sorted(TOPICS)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for i in range(rows):
            topic = names[i % len(names)]
            writer.writerow([f"we talked about {rng.choice(TOPICS[topic])} today", topic])
    return path


def new_config(tmp_path: Path, old_run: Path, data: Path, **continual) -> dict:
    return {
        "output_dir": str(tmp_path / "new"),
        "data": {"train": str(data)},
        "training": {"epochs": 1, "batch_size": 8, "learning_rate": 2e-3, "warmup_ratio": 0.0},
        "report": {"baselines": False},
        "continual": {"from_run": str(old_run), **continual},
    }


def test_a_new_task_starts_from_the_old_encoder_and_records_the_forgetting(trained_run: Path, tmp_path: Path):
    old_metrics = json.loads((trained_run / "metrics.json").read_text())
    config = new_config(tmp_path, trained_run, write_topics_csv(tmp_path / "topics.csv"), replay=0.25, ewc=5.0,
                        ewc_examples=8, l2sp=0.1)  # fmt: skip
    run = finetune(config)
    found = run.metrics["continual"]
    old = found["old_task"]
    # Before training the old task's model is the old run's, on the old run's own validation split.
    assert old["split"] == "validation" and old["metric"] == "accuracy"
    assert old["before"]["accuracy"] == pytest.approx(old_metrics["validation"]["accuracy"])
    assert old["before"]["loss"] == pytest.approx(old_metrics["validation"]["loss"], rel=1e-4)
    assert old["forgetting"] == pytest.approx(old["before"]["accuracy"] - old["after"]["accuracy"])
    # 64 old training rows (80 less the carved validation and test), a quarter replayed, over 6 steps.
    assert found["protection"] == {"head": "new", "l2sp": 0.1, "ewc": 5.0, "ewc_examples": 8, "replay_rows": 16,
                                   "replay_per_step": 3}  # fmt: skip
    # The new task has its own head and labels; the old run is untouched.
    assert json.loads((run.path / "labels.json").read_text()) == ["food", "music", "sport"]
    assert json.loads((run.path / "model" / "config.json").read_text())["id2label"] == {
        "0": "food", "1": "music", "2": "sport"
    }  # fmt: skip
    assert json.loads((trained_run / "labels.json").read_text()) == ["neg", "pos"]
    report = (run.path / "report.md").read_text()
    assert "## Continual learning" in report and "| validation |" in report
    assert f"by way of the run `{found['from_run']}`" in report
    assert f"(by way of the fine-tuned run `{trained_run.name}`)" in (run.path / "model" / "README.md").read_text()


def test_new_data_for_the_same_task_keeps_the_old_head(trained_run: Path, tmp_path: Path):
    data = write_sentiment_csv(tmp_path / "more.csv", rows_per_label=12, seed=3)
    run = finetune(new_config(tmp_path, trained_run, data, head="keep", replay=10))
    found = run.metrics["continual"]
    assert found["protection"]["head"] == "kept" and found["protection"]["replay_rows"] == 10
    old_metrics = json.loads((trained_run / "metrics.json").read_text())
    assert found["old_task"]["before"]["accuracy"] == pytest.approx(old_metrics["validation"]["accuracy"])


def write_yaml(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def train_cli(capsys: pytest.CaptureFixture, config: Path) -> tuple[int, str]:
    code = main(["train", str(config)])
    return code, capsys.readouterr().err


def test_keeping_the_head_with_other_labels_is_refused(
    trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
):
    config = new_config(tmp_path, trained_run, write_topics_csv(tmp_path / "topics.csv"), head="keep")
    code, err = train_cli(capsys, write_yaml(tmp_path / "new.yaml", config))
    assert code == 2 and "Traceback" not in err
    assert "continual.head keep" in err and "label sets must agree" in err
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("damage", ["missing", "unfinished", "pretraining"])
def test_a_bad_old_run_exits_2_naming_the_field(
    damage: str, trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
):
    old = tmp_path / "old"
    if damage != "missing":
        shutil.copytree(trained_run, old)
    if damage == "unfinished":
        shutil.rmtree(old / "model")
        (old / "status.json").write_text(json.dumps({"status": "failed", "time": "2026-01-01T00:00:00"}))
    if damage == "pretraining":
        (old / "config.yaml").write_text("objective: mlm\ntokenizer: x\ndata:\n  train: [x.txt]\n")
    config = new_config(tmp_path, old, write_topics_csv(tmp_path / "topics.csv"), ewc=1.0)
    code, err = train_cli(capsys, write_yaml(tmp_path / "new.yaml", config))
    assert code == 2 and "Traceback" not in err, err
    expected = {"missing": "does not exist", "unfinished": "not a finished run", "pretraining": "pretraining run"}
    assert err.startswith("error: continual.from_run: ") and expected[damage] in err, err
    assert not (tmp_path / "new").exists()


def test_l2sp_alone_needs_no_old_run_and_keeps_the_encoder_near_its_start(tiny_config: dict, tiny_model: str):
    from safetensors.torch import load_file

    start = load_file(str(Path(tiny_model) / "model.safetensors"))
    key = "encoder.layer.0.attention.self.query.weight"

    def drift(l2sp: float, name: str) -> float:
        settings = {**tiny_config["training"], "epochs": 1}
        config = {**tiny_config, "output_dir": str(Path(tiny_config["output_dir"]) / name), "training": settings}
        run = finetune({**config, "regularization": {"l2sp": l2sp}})
        assert "continual" not in run.metrics
        trained = load_file(str(run.path / "model" / "model.safetensors"))
        return float((trained["bert." + key] - start[key]).abs().mean())

    # A strong pull holds the encoder within a fraction of where plain fine-tuning takes it.
    assert drift(1000.0, "pulled") < 0.5 * drift(0.0, "free")
