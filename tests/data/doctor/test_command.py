"""`tunesmith doctor`: a table on stdout, doctor.json and doctor.md on disk, exit 2 on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.data.doctor.helpers import clean_rows, write_csv
from tunesmith.cli import main


def test_doctor_prints_the_table_and_writes_both_files(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    train = clean_rows(40)
    train.append((train[0][0], "neg" if train[0][1] == "pos" else "pos"))
    data = write_csv(tmp_path / "train.csv", train)
    output = tmp_path / "out"
    code = main(
        ["doctor", "--data", str(data), "--output-dir", str(output), "--no-label-errors", "doctor.min_characters=2"]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "warning   conflicting_labels  train" in out and "1 input occurs with different labels" in out
    saved = json.loads((output / "doctor.json").read_text())
    assert saved["rows"] == {"train": 33, "validation": 4, "test": 4}
    assert "## conflicting_labels (train)" in (output / "doctor.md").read_text()
    # Written again into its own folder, and --json prints what it writes.
    assert main(["doctor", "--data", str(data), "--output-dir", str(output), "--no-label-errors", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads((output / "doctor.json").read_text())


def test_doctor_refuses_a_folder_of_other_files_and_missing_input(
    capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    data = write_csv(tmp_path / "train.csv", clean_rows(20))
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    assert main(["doctor", "--data", str(data), "--output-dir", str(taken)]) == 2
    assert "notes.txt" in capsys.readouterr().err and (taken / "notes.txt").read_text() == "mine"
    assert main(["doctor"]) == 2
    assert "Nothing to examine" in capsys.readouterr().err
    assert main(["doctor", "--data", str(tmp_path / "nope.csv"), "--output-dir", str(tmp_path / "o")]) == 2
    assert "nope.csv" in capsys.readouterr().err and not (tmp_path / "o").exists()
