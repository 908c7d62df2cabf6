import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tunesmith import runs
from tunesmith.errors import UserError
from tunesmith.runs import (
    RUN_FILES,
    RUN_FOLDERS,
    RunFolder,
    check_finished,
    check_output_folder,
    read_status,
    remove_ours,
    resume_point,
    run_config,
)
from tunesmith.train.checkpoints import Checkpoint


def test_create_refuses_an_existing_run_and_keeps_it(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path / "run")
    run.set_status("finished")
    run.write_text("report.md", "precious")
    with pytest.raises(UserError, match="already holds a finished run.*--overwrite"):
        RunFolder.create(tmp_path / "run")
    assert (tmp_path / "run" / "report.md").read_text() == "precious"


@pytest.mark.parametrize("overwrite", [False, True])
def test_folder_that_is_not_a_run_is_refused_and_kept(tmp_path: Path, overwrite: bool) -> None:
    # What `--data d/train.csv --output-dir d --overwrite` met: the user's data and notes.
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "train.csv").write_text("text,label\n")
    (tmp_path / "photos").mkdir()
    with pytest.raises(UserError, match="is not a tunesmith run folder: it holds 'notes.txt', 'photos', 'train.csv'"):
        RunFolder.create(tmp_path, overwrite=overwrite)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "photos", "train.csv"]
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    "status",
    [
        '{"status": "finished"}',  # no time: not what tunesmith writes
        '{"status": "done", "time": "2024-01-01T00:00:00"}',  # an unknown status
        '["finished"]',
        "finished",
    ],
)
def test_a_look_alike_status_file_does_not_make_a_run_folder(tmp_path: Path, status: str) -> None:
    (tmp_path / "status.json").write_text(status)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights.bin").write_text("someone else's")
    with pytest.raises(UserError, match="is not a tunesmith run folder"):
        RunFolder.create(tmp_path, overwrite=True)
    assert (tmp_path / "model" / "weights.bin").read_text() == "someone else's"


def test_a_linked_status_file_does_not_make_a_run_folder(tmp_path: Path) -> None:
    real = RunFolder.create(tmp_path / "real")
    real.set_status("finished")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "status.json").symlink_to(real.path / "status.json")
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="is not a tunesmith run folder"):
        RunFolder.create(tmp_path / "mine", overwrite=True)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "mine"


def test_overwrite_refuses_a_run_holding_anything_tunesmith_did_not_write(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path / "run")
    run.set_status("finished")
    (run.path / "model").mkdir()
    (run.path / "model" / "model.safetensors").write_text("weights")
    (run.path / "train.csv").write_text("text,label\n")
    (run.path / "metrics.json").mkdir()  # a name of tunesmith's, but a folder where it writes a file
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("mine")
    (run.path / "checkpoints").symlink_to(elsewhere)  # tunesmith writes no links
    before = sorted(p.name for p in run.path.iterdir())
    with pytest.raises(UserError) as error:
        RunFolder.create(run.path, overwrite=True)
    message = str(error.value)
    assert "holds a finished tunesmith run, but also 'checkpoints', 'metrics.json', 'train.csv'" in message
    assert "choose another --output-dir" in message
    assert sorted(p.name for p in run.path.iterdir()) == before
    assert (run.path / "model" / "model.safetensors").read_text() == "weights"
    assert (elsewhere / "keep.txt").read_text() == "mine"


def test_overwrite_and_failed_runs_are_replaced(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path / "run")
    run.set_status("failed", error="boom")
    run.write_text("report.md", "x")
    replaced = RunFolder.create(tmp_path / "run")
    assert not (replaced.path / "report.md").exists()
    replaced.set_status("finished")
    RunFolder.create(tmp_path / "run", overwrite=True)
    assert read_status(tmp_path / "run") is None


def test_replacing_a_run_removes_everything_tunesmith_writes_there(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path / "run")
    for name in RUN_FILES | {".status.json.tmp", ".history.jsonl.tmp", ".write-test"}:
        (run.path / name).write_text("x")
    for name in RUN_FOLDERS | {".model.tmp", ".adapter.tmp"}:
        (run.path / name / "inner").mkdir(parents=True)
    run.set_status("finished")
    RunFolder.create(run.path, overwrite=True)
    assert list(run.path.iterdir()) == []


def test_remove_ours_leaves_anything_else(tmp_path: Path) -> None:
    # The last line of defence, should a check before it be skipped: only tunesmith's names go.
    (tmp_path / "model").mkdir()
    (tmp_path / "report.md").write_text("x")
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / ".modelx.tmp").mkdir()
    remove_ours(tmp_path, RUN_FILES, RUN_FOLDERS.__contains__)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".modelx.tmp", "notes.txt"]


def test_refusals_list_a_few_names_and_count_the_rest(tmp_path: Path) -> None:
    for number in range(8):
        (tmp_path / f"file-{number}").write_text("")
    (tmp_path / "a\nb").write_text("")  # shown escaped: a message stays one paragraph
    with pytest.raises(UserError) as error:
        RunFolder.create(tmp_path, overwrite=True)
    message = str(error.value)
    assert "it holds 'a\\nb', 'file-0', 'file-1', 'file-2', 'file-3' and 4 more." in message
    assert "\n" not in message


def test_output_folder_of_compare_or_search_holds_only_their_results(tmp_path: Path) -> None:
    folder = tmp_path / "search"
    check_output_folder(folder, ("trials.md",), "trial-0".__eq__, "search")  # new: fine
    folder.mkdir()
    (folder / "trials.md").write_text("")
    (folder / "trial-0").mkdir()
    check_output_folder(folder, ("trials.md",), "trial-0".__eq__, "search")
    (folder / "notes.txt").write_text("")
    with pytest.raises(UserError, match="holds 'notes.txt', which `tunesmith search` did not write"):
        check_output_folder(folder, ("trials.md",), "trial-0".__eq__, "search")
    with pytest.raises(UserError, match="is a file, not a folder"):
        check_output_folder(folder / "notes.txt", ("trials.md",), "trial-0".__eq__, "search")


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
        run.write_json(
            "status.json",
            {"status": "running", "time": "2024-01-01T00:00:00", "pid": alive.pid, "host": socket.gethostname()},
        )
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


def test_an_atomic_write_that_fails_leaves_the_old_file_and_no_temporary_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "predictions.csv"
    target.write_text("old\n")

    def full_disk(source: object, destination: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(runs.os, "replace", full_disk)
    with pytest.raises(OSError):
        runs.write_atomic(target, "new\n")
    assert target.read_text() == "old\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["predictions.csv"]


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
