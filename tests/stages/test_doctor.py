"""The doctor before `train`: doctor.fail_on stops a run before anything is written; findings are saved."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import tunesmith
from tests.data.doctor.helpers import clean_rows, write_csv
from tunesmith.errors import UserError
from tunesmith.runs import RunFolder


def test_a_check_in_fail_on_stops_the_run_before_the_run_folder(tmp_path: Path, tiny_model: str) -> None:
    train = clean_rows(40)
    test = clean_rows(10, offset=100) + [train[0]]
    config = {
        "model": tiny_model,
        "output_dir": str(tmp_path / "run"),
        "data": {
            "train": str(write_csv(tmp_path / "train.csv", train)),
            "test": str(write_csv(tmp_path / "test.csv", test)),
        },
        "doctor": {"fail_on": ["split_overlap"]},
    }
    with pytest.raises(UserError) as refused:
        tunesmith.finetune(config)
    message = str(refused.value)
    assert "test.csv" in message and "doctor.fail_on lists split_overlap" in message and "1 of 11 test rows" in message
    assert not (tmp_path / "run").exists()


def test_a_finished_run_keeps_what_the_doctor_found(trained_run: Path) -> None:
    saved = json.loads((trained_run / "doctor.json").read_text())
    assert saved["rows"]["train"] == 64 and set(saved["statistics"]) == {"labels", "token_lengths"}
    assert (trained_run / "doctor.md").read_text().startswith("# Data doctor: ")
    # Files of tunesmith's own: a finished run holding them may be replaced.
    assert RunFolder.check_replaceable(trained_run, overwrite=True)


def test_the_warnings_are_logged_once_the_run_folder_is_open(
    tmp_path: Path, tiny_model: str, caplog: pytest.LogCaptureFixture
) -> None:
    train = clean_rows(40)
    train.append((train[0][0], "neg" if train[0][1] == "pos" else "pos"))
    config = {
        "model": tiny_model,
        "output_dir": str(tmp_path / "run"),
        "data": {"train": str(write_csv(tmp_path / "train.csv", train)), "validation_split": 0, "test_split": 0},
        "training": {"epochs": 1, "batch_size": 16},
    }
    with caplog.at_level("INFO", logger="tunesmith"):
        run = tunesmith.finetune(config)
    logged = [record.getMessage() for record in caplog.records]
    assert "Data doctor, train: 1 input occurs with different labels" in "\n".join(logged)
    assert any(line.startswith("Data doctor: 1 warning, 1 info. See ") for line in logged)
    assert json.loads((run.path / "doctor.json").read_text())["findings"][0]["check"] == "conflicting_labels"
