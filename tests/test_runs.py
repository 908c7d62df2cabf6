from pathlib import Path

import pytest

from tunesmith.errors import UserError
from tunesmith.runs import RunFolder, read_status


def test_create_refuses_an_existing_run_and_keeps_it(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path / "run")
    run.set_status("finished")
    run.write_text("keep.txt", "precious")
    with pytest.raises(UserError, match="already holds a finished run.*--overwrite"):
        RunFolder.create(tmp_path / "run")
    assert (tmp_path / "run" / "keep.txt").read_text() == "precious"


def test_folder_with_other_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="already holds files"):
        RunFolder.create(tmp_path)


def test_overwrite_and_failed_runs_are_replaced(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path / "run")
    run.set_status("failed", error="boom")
    run.write_text("old.txt", "x")
    replaced = RunFolder.create(tmp_path / "run")
    assert not (replaced.path / "old.txt").exists()
    replaced.set_status("finished")
    RunFolder.create(tmp_path / "run", overwrite=True)
    assert read_status(tmp_path / "run") is None


def test_unwritable_folder_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    with pytest.raises(UserError, match="is a file, not a folder"):
        RunFolder.create(tmp_path / "a-file")
    with pytest.raises(UserError, match="Cannot write to output folder"):
        RunFolder.create(tmp_path / "a-file" / "run")


def test_atomic_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path / "run")
    run.write_json("metrics.json", {"a": 1})
    run.append_history({"step": 1})
    run.append_history({"step": 2})
    assert sorted(p.name for p in run.path.iterdir()) == ["history.jsonl", "metrics.json"]
    assert (run.path / "history.jsonl").read_text().splitlines() == ['{"step": 1}', '{"step": 2}']
