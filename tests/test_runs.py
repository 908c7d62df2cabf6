import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tunesmith.errors import UserError
from tunesmith.runs import RunFolder, check_finished, read_status, resume_point, run_config
from tunesmith.train.checkpoints import Checkpoint


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


def test_a_folder_whose_run_is_alive_is_refused_and_a_dead_one_replaced(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path / "run")
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run.write_json("status.json", {"status": "running", "pid": alive.pid, "host": socket.gethostname()})
        with pytest.raises(UserError, match=rf"still in progress \(process {alive.pid}\)"):
            RunFolder.create(tmp_path / "run", overwrite=True)
        with pytest.raises(UserError, match="still in progress"):
            resume_point(tmp_path / "run")
    finally:
        alive.kill()
        alive.wait()
    # The same record once its process is gone: what kill -9 leaves. No checkpoint, so start afresh.
    assert resume_point(tmp_path / "run") == (None, [])
    RunFolder.create(tmp_path / "run")


def test_resume_point_errors_say_what_is_there(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="Nothing to resume in .*: it holds no tunesmith run"):
        resume_point(tmp_path / "missing", resume=True)
    with pytest.raises(UserError, match="contradict"):
        resume_point(tmp_path, overwrite=True, resume=True)
    run = RunFolder.create(tmp_path / "run")
    run.set_status("interrupted")
    (run.checkpoints / "step-4").mkdir(parents=True)
    with pytest.raises(UserError, match=r"holds no usable checkpoint \(step-4: checkpoint.json is missing"):
        resume_point(run.path, resume=True)
    run.set_status("finished")
    with pytest.raises(UserError, match="it holds a finished run"):
        resume_point(run.path, resume=True)


def test_reopen_cuts_the_history_back_to_the_checkpoint(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path / "run")
    for record in ({"step": 1}, {"step": 2, "split": "validation"}, {"step": 3}, {"split": "test", "final": True}):
        run.append_history(record)
    with open(run.path / "history.jsonl", "a") as handle:
        handle.write('{"step": 4, "lo')  # a line cut short by kill -9
    RunFolder.reopen(run.path, Checkpoint(run.checkpoints / "step-2", 2))
    kept = (run.path / "history.jsonl").read_text().splitlines()
    assert kept == ['{"step": 1}', '{"step": 2, "split": "validation"}']


def test_a_run_folder_that_does_not_exist_is_named_as_such(tmp_path: Path) -> None:
    with pytest.raises(
        UserError, match=f"Run folder {re.escape(str(tmp_path / 'nowhere'))} does not exist. Check the path"
    ):
        check_finished(tmp_path / "nowhere")
    (tmp_path / "a-file").write_text("")
    with pytest.raises(UserError, match="a-file is a file, not a folder"):
        check_finished(tmp_path / "a-file")
    with pytest.raises(UserError, match="has no model/ or adapter/ folder"):
        check_finished(tmp_path)
    RunFolder(tmp_path).set_status("finished")
    with pytest.raises(UserError, match="is a finished run, but neither model/config.json nor adapter/"):
        check_finished(tmp_path)


def test_a_missing_or_damaged_config_yaml_is_named(tmp_path: Path) -> None:
    with pytest.raises(
        UserError, match=f"{re.escape(str(tmp_path / 'config.yaml'))} is missing, so the settings the run"
    ):
        run_config(tmp_path)
    (tmp_path / "config.yaml").write_text("training: {epochs: [\n", encoding="utf-8")
    with pytest.raises(
        UserError, match=f"Config file {re.escape(str(tmp_path / 'config.yaml'))}, line 2.*not valid YAML"
    ):
        run_config(tmp_path)
    (tmp_path / "config.yaml").write_bytes(b"\xff\xfe data")
    with pytest.raises(UserError, match="config.yaml is not UTF-8 text"):
        run_config(tmp_path)
