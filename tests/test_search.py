import json
from pathlib import Path

import pytest
import yaml

from tunesmith.config import RunConfig, validate_config
from tunesmith.errors import UserError
from tunesmith.search import default_space, search


def write_config(tiny_config: dict, tmp_path: Path, **extra) -> Path:
    config = {**tiny_config, **extra}
    config.pop("output_dir")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.slow  # trains once per trial
def test_search_starts_from_the_given_config_and_writes_the_best_one(tiny_config: dict, tmp_path: Path) -> None:
    space = {
        "training.learning_rate": {"low": 1e-4, "high": 5e-3, "log": True},
        "training.batch_size": {"choices": [8, 16]},
    }
    config = write_config(tiny_config, tmp_path, search={"space": space, "prune": False})
    folder, rows, best = search(config, ["training.epochs=2"], trials=3, output_dir=tmp_path / "search")
    assert [row["trial"] for row in rows] == [0, 1, 2]
    assert rows[0]["params"] == {"training.learning_rate": 2e-3, "training.batch_size": 8}
    assert all(row["state"] == "complete" for row in rows)
    best_row = max(rows, key=lambda row: row["accuracy"])
    assert best["training"]["learning_rate"] == best_row["params"]["training.learning_rate"]
    assert best["training"]["epochs"] == 2 and "search" not in best
    saved = yaml.safe_load((folder / "best.yaml").read_text())
    assert validate_config(saved, "best.yaml").training.batch_size == best_row["params"]["training.batch_size"]
    assert "(given config)" in (folder / "trials.md").read_text()
    assert (folder / "trial-2" / "metrics.json").is_file()
    # The baselines depend on the data alone: measured by the first trial only, and the best config keeps them on.
    assert ["baselines" in json.loads((folder / f"trial-{n}" / "metrics.json").read_text()) for n in range(3)] == [
        True,
        False,
        False,
    ]
    assert "report" not in best


def test_search_space_keys_and_values_are_checked_before_training(tiny_config: dict, tmp_path: Path) -> None:
    config = write_config(tiny_config, tmp_path, search={"space": {"training.lerning_rate": {"low": 1, "high": 2}}})
    with pytest.raises(UserError, match='"training.lerning_rate" is not a config key'):
        search(config, [], trials=1, output_dir=tmp_path / "s")
    config = write_config(tiny_config, tmp_path, search={"space": {"training.batch_size": {"choices": [8, 0]}}})
    with pytest.raises(UserError, match=r"with training.batch_size=0"):
        search(config, [], trials=1, output_dir=tmp_path / "s")
    with pytest.raises(UserError, match="either low and high, or a non-empty list of choices"):
        validate_config({**tiny_config, "search": {"space": {"training.seed": {"low": 1}}}}, "x")
    assert not (tmp_path / "s").exists()


def test_search_refuses_a_folder_it_did_not_write_before_any_trial(tiny_config: dict, tmp_path: Path) -> None:
    config = write_config(tiny_config, tmp_path)
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="holds 'notes.txt', which `tunesmith search` did not write"):
        search(config, [], trials=2, output_dir=folder)
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    # A trial's folder that is no run of tunesmith's: refused before trial 0 trains.
    (folder / "notes.txt").unlink()
    (folder / "trial-1").mkdir()
    (folder / "trial-1" / "data.csv").write_text("mine")
    with pytest.raises(UserError, match="trial-1 is not empty and is not a tunesmith run folder: it holds 'data.csv'"):
        search(config, [], trials=2, output_dir=folder)
    assert sorted(p.name for p in folder.iterdir()) == ["trial-1"]
    assert (folder / "trial-1" / "data.csv").read_text() == "mine"


def test_the_default_space_leaves_out_the_warmup_ratio_when_the_warmup_is_in_steps() -> None:
    assert "training.warmup_ratio" in default_space(RunConfig(data={"train": "x.csv"}))
    given = RunConfig(data={"train": "x.csv"}, training={"warmup_steps": 10})
    assert "training.warmup_ratio" not in default_space(given)
