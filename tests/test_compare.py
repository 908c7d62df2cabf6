import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tunesmith.compare import parse_strategies, table
from tunesmith.errors import UserError


def write_config(tiny_config: dict, tmp_path: Path) -> Path:
    config = {**tiny_config, "training": {**tiny_config["training"], "epochs": 1}}
    config.pop("output_dir")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def tunesmith(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tunesmith", *args], cwd=cwd, capture_output=True, text=True)


@pytest.mark.slow  # trains once per strategy
def test_compare_trains_each_strategy_and_tabulates_them(tiny_config: dict, tmp_path: Path) -> None:
    config = write_config(tiny_config, tmp_path)
    out = tmp_path / "cmp"
    done = tunesmith("compare", str(config), "--strategies", "full,bitfit", "--output-dir", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = json.loads((out / "compare.json").read_text())
    assert [row["strategy"] for row in rows] == ["full", "bitfit"]
    full, bitfit = rows
    assert full["trainable_parameters"] == full["total_parameters"]
    assert bitfit["trainable_parameters"] < full["trainable_parameters"] / 10
    assert all(row["status"] == "finished" and 0 <= row["validation"] <= 1 for row in rows)
    assert (out / "bitfit" / "config.yaml").is_file() and "| bitfit |" in done.stdout
    # A finished strategy is read back, not retrained.
    metrics = out / "full" / "metrics.json"
    stamp = metrics.stat().st_mtime_ns
    again = tunesmith("compare", str(config), "--strategies", "full", "--output-dir", str(out), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert metrics.stat().st_mtime_ns == stamp


def test_unknown_strategy_is_refused_before_any_training(tiny_config: dict, tmp_path: Path) -> None:
    config = write_config(tiny_config, tmp_path)
    done = tunesmith("compare", str(config), "--strategies", "full,lroa", cwd=tmp_path)
    assert done.returncode == 2
    assert "unknown strategy 'lroa'" in done.stderr and "lora" in done.stderr
    assert not (tmp_path / "runs").exists()
    with pytest.raises(UserError, match="none given"):
        parse_strategies(" , ")


def test_table_marks_failed_runs() -> None:
    rows = [
        {"strategy": "full", "status": "failed", "metric": "accuracy"},
        {
            "strategy": "lora",
            "status": "finished",
            "metric": "accuracy",
            "validation": 0.9,
            "test": 0.85,
            "trainable_parameters": 10,
            "total_parameters": 1000,
            "train_time_s": 3.2,
            "samples_per_s": 100.0,
            "peak_memory_mb": 1234.5,
        },
    ]
    lines = table(rows).splitlines()
    assert lines[2] == "| full | failed | | | | | | |"
    assert lines[3] == "| lora | 0.9000 | 0.8500 | 10 | 1.00 | 3 | 100.0 | 1,234 |"


def test_compare_refuses_a_folder_it_did_not_write_before_any_training(tiny_config: dict, tmp_path: Path) -> None:
    from tunesmith.compare import compare

    config = write_config(tiny_config, tmp_path)
    out = tmp_path / "cmp"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="holds 'notes.txt', which `tunesmith compare` did not write"):
        compare(config, [], ["full", "lora"], out, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    # A strategy's folder that is no run of tunesmith's: refused before the first strategy trains.
    (out / "notes.txt").unlink()
    (out / "lora").mkdir()
    (out / "lora" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="lora is not empty and is not a tunesmith run folder: it holds 'notes.txt'"):
        compare(config, [], ["full", "lora"], out, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["lora"]
    assert (out / "lora" / "notes.txt").read_text() == "mine"
