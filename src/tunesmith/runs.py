"""The run folder every command shares (see DESIGN.md), written atomically.

`status.json` says whether the run is running, finished, failed or interrupted, so a
folder left by a crash never passes for a finished run; metrics.json and model/ appear
only at the end of a successful run. A new `train` into an unfinished run's folder
continues from its latest usable checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from tunesmith.config import RunConfig, read_yaml, validate_config
from tunesmith.errors import UserError, brief

if TYPE_CHECKING:
    from tunesmith.train.checkpoints import Checkpoint

STATUS_FILE = "status.json"
CHECKPOINTS = "checkpoints"
# Runs that ended without finishing; without a checkpoint their folder may be replaced.
UNFINISHED = {"failed", "interrupted", "running"}
STATUSES = UNFINISHED | {"finished"}
# Everything tunesmith writes at the top of a run folder (stages/save.py, RunFolder below). Replacing a
# run removes these and nothing else, and a folder holding anything more is never replaced.
RUN_FILES = frozenset(
    {
        "config.yaml",
        STATUS_FILE,
        "metrics.json",
        "history.jsonl",
        "labels.json",
        "task.json",
        "report.md",
        "report.html",
        # tracking: [mlflow]'s store, unless MLFLOW_TRACKING_URI names another (train/tracking.py).
        "mlflow.db",
        "doctor.json",
        "doctor.md",
        # Each evaluation example's prediction, which the report reads (evaluate/parts.py).
        "predictions.jsonl",
        # The report's explained errors (stages/save.py).
        "explanations.json",
        # The report's figures (evaluate/figures.py FIGURES).
        "confusion_matrix.png",
        "per_class_f1.png",
        "learning_curves.png",
        "reliability.png",
        "predicted_vs_gold.png",
        # pretrain/curve.py
        "pretraining_curve.png",
        # fewshot/head.py: the linear head of a zero-shot or contrastive run (a cloze run has none).
        "head.safetensors",
    }
)
# model/ and adapter/ are staged as .model.tmp and .adapter.tmp (RunFolder.save_folder).
# tensorboard/, wandb/ (offline W&B) and mlflow-artifacts/: train/tracking.py.
RUN_FOLDERS = frozenset(
    {"model", "adapter", CHECKPOINTS, ".model.tmp", ".adapter.tmp", "tensorboard", "wandb", "mlflow-artifacts"}
)
WRITE_TEST = ".write-test"
# How many names an error message lists: enough to recognise the folder, not a directory listing.
LISTED = 5


def temporary_name(name: str) -> str:
    """The name a file or folder is written under before it is renamed into place."""
    return f".{name}.tmp"


def write_atomic(path: Path, text: str) -> None:
    """Write to a temporary file, then rename: a reader never sees half a file."""
    temporary = path.with_name(temporary_name(path.name))
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except BaseException:
        # A full disk or an interrupt leaves neither half a file nor the temporary one behind.
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        raise


def read_status(path: Path) -> str | None:
    record = read_status_record(path)
    return record["status"] if record else None


def check_finished(run_dir: Path) -> None:
    """Refuse a folder that holds no trained model: missing, never started, still running, or failed."""
    if not run_dir.is_dir():
        what = "is a file, not a folder" if run_dir.exists() else "does not exist"
        raise UserError(
            f"Run folder {run_dir} {what}. Check the path: it is the --output-dir (or runs/<name>) of a "
            "`tunesmith train` that finished."
        )
    # A zero-shot run keeps only its head: it embeds with the backbone its config names.
    saved = (
        run_dir / "model" / "config.json",
        run_dir / "adapter" / "adapter_config.json",
        run_dir / "head.safetensors",
    )
    if not any(path.is_file() for path in saved):
        status = read_status(run_dir)
        if status == "finished":
            raise UserError(
                f"{run_dir} is a finished run, but neither model/config.json nor adapter/adapter_config.json is "
                "there. The run folder is damaged: copy it again from where it was trained, or train the run again."
            )
        state = f"its status is {status!r}" if status else "it has no model/ or adapter/ folder"
        raise UserError(
            f"{run_dir} is not a finished run folder ({state}). Point at a folder written by "
            "`tunesmith train` that finished."
        )


def run_config(run_dir: Path) -> RunConfig:
    """The config a run was trained with, as its folder keeps it (config.yaml)."""
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise UserError(
            f"{path} is missing, so the settings the run was trained with (task, columns, max_length) are unknown. "
            "The run folder is damaged: copy it again from where it was trained, or train the run again."
        )
    # The config loader's reading: a damaged file is a UserError that names its line.
    raw = read_yaml(path)
    if isinstance(raw, dict) and "objective" in raw:
        # A pretraining run's config is another schema; its model has no task head to predict with.
        raise UserError(
            f"{run_dir} is a pretraining run (objective {raw['objective']}), not a fine-tuned one: its model has no "
            f"task head to predict with. Fine-tune it first (tunesmith train --data FILE --model {run_dir / 'model'}) "
            "and give that run."
        )
    return validate_config(raw, str(path), saved=True)


def read_status_record(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads((path / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("status"), str) else None


def run_marker(path: Path) -> dict[str, Any] | None:
    """status.json as tunesmith writes it (a known status and a time): what makes a folder one of its runs.

    None for anything else, so that a folder is never taken for a run, and replaced, on a look-alike file.
    """
    status = path / STATUS_FILE
    if status.is_symlink() or not status.is_file():
        return None
    record = read_status_record(path)
    if record is None or record["status"] not in STATUSES or not isinstance(record.get("time"), str):
        return None
    return record


def is_ours(entry: Path, files: Collection[str], folders: Callable[[str], bool]) -> bool:
    """Whether `entry` is a file or folder tunesmith writes under that name; a link never is.

    `files` are written through write_atomic, so their temporaries count too.
    """
    if entry.is_symlink():
        return False
    name = entry.name
    if name == WRITE_TEST or name in files or name in {temporary_name(file) for file in files}:
        return entry.is_file()
    return folders(name) and entry.is_dir()


def foreign_entries(path: Path, files: Collection[str], folders: Callable[[str], bool]) -> list[str]:
    """The names in folder `path` that tunesmith did not write there, sorted."""
    return sorted(entry.name for entry in path.iterdir() if not is_ours(entry, files, folders))


def listing(names: list[str]) -> str:
    """A few names for a message, quoted so that odd characters show; the rest counted."""
    shown = ", ".join(brief(name) for name in names[:LISTED])
    return shown + (f" and {len(names) - LISTED} more" if len(names) > LISTED else "")


def check_output_folder(path: Path, files: Collection[str], folders: Callable[[str], bool], command: str) -> None:
    """Refuse a folder for the results of `command` (compare, search) that holds anything else.

    Those commands write fixed names into it, which must not land on a file of the user's.
    """
    if path.exists() and not path.is_dir():
        raise UserError(f"Output path {path} is a file, not a folder. Choose another --output-dir.")
    if not path.is_dir():
        return
    foreign = foreign_entries(path, files, folders)
    if foreign:
        raise UserError(
            f"Output folder {path} holds {listing(foreign)}, which `tunesmith {command}` did not write. It writes "
            f"only into a new or empty folder or one an earlier `tunesmith {command}` wrote, so that nothing of "
            "yours is overwritten: choose another --output-dir."
        )


def remove_ours(path: Path, files: Collection[str], folders: Callable[[str], bool]) -> None:
    """Delete what tunesmith wrote in folder `path`, and only that: anything else stays."""
    for entry in path.iterdir():
        if is_ours(entry, files, folders):
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()


def resume_point(path: Path, overwrite: bool = False, resume: bool = False) -> tuple[Checkpoint | None, list[str]]:
    """The checkpoint a new run into `path` continues from (None: start afresh), and checkpoints skipped.

    Resuming is automatic when the folder holds an unfinished run with a usable checkpoint;
    `resume=True` makes it an error when there is none.
    """
    path = Path(path)
    if overwrite:
        if resume:
            raise UserError("--resume and --overwrite contradict each other: resume a run, or replace it.")
        return None, []
    record = read_status_record(path)
    _refuse_if_in_use(path, record)
    status = record["status"] if record else None
    if status in UNFINISHED:
        # Checkpoints mean torch (seconds to import); reading a folder's status must stay quick,
        # so that `tunesmith predict` on a wrong folder answers at once.
        from tunesmith.train.checkpoints import latest_usable

        checkpoint, skipped = latest_usable(path / CHECKPOINTS)
        if checkpoint is not None or not resume:
            return checkpoint, skipped
        why = f" ({'; '.join(skipped)})" if skipped else ""
        raise UserError(
            f"Nothing to resume in {path}: it holds no usable checkpoint{why}. "
            "Run the same command without --resume to start afresh."
        )
    if resume:
        what = f"a {status} run" if status else "no tunesmith run"
        raise UserError(
            f"Nothing to resume in {path}: it holds {what}. Run without --resume (add --overwrite to replace a run)."
        )
    return None, []


def _refuse_if_in_use(path: Path, record: dict[str, Any] | None) -> None:
    """A folder whose run is still alive on this machine belongs to that run."""
    if not record or record["status"] != "running":
        return
    pid, host = record.get("pid"), record.get("host")
    if not isinstance(pid, int) or host != socket.gethostname() or pid == os.getpid():
        return
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return
    except PermissionError:
        pass
    raise UserError(
        f"Output folder {path} belongs to a run still in progress (process {pid}). Wait for it, stop it "
        "(Ctrl-C or kill; it checkpoints first), or choose another --output-dir."
    )


@dataclass
class RunFolder:
    path: Path

    @classmethod
    def create(cls, path: Path, overwrite: bool = False) -> RunFolder:
        """A fresh, empty run folder; refuses to clobber an existing run unless told to.

        Replacing a run empties its folder of what tunesmith wrote; the folder itself stays.
        """
        path = Path(path)
        replace = cls.check_replaceable(path, overwrite)
        try:
            if replace:
                remove_ours(path, RUN_FILES, RUN_FOLDERS.__contains__)
            path.mkdir(parents=True, exist_ok=True)
            probe = path / WRITE_TEST
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise UserError(
                f"Cannot write to output folder {path} ({exc.strerror}). Choose another --output-dir."
            ) from None
        return cls(path)

    @staticmethod
    def check_replaceable(path: Path, overwrite: bool = False) -> bool:
        """Raise if a new run may not go to `path`; True when something there must be removed first.

        Only a run folder of tunesmith's own (see `run_marker`) that holds nothing but what tunesmith
        writes there may be replaced: a finished run with `overwrite`, an unfinished one without.
        Only reads, so every process of a multi-process run can ask before the main one writes.
        """
        if path.exists() and not path.is_dir():
            raise UserError(f"Output path {path} is a file, not a folder. Choose another --output-dir.")
        if not (path.is_dir() and any(path.iterdir())):
            return False
        record = run_marker(path)
        if record is None:
            raise UserError(
                f"Output folder {path} is not empty and is not a tunesmith run folder: it holds "
                f"{listing(sorted(entry.name for entry in path.iterdir()))}. tunesmith writes a run only into a new "
                "or empty folder or a run folder of its own: choose another --output-dir."
            )
        status = record["status"]
        _refuse_if_in_use(path, record)
        foreign = foreign_entries(path, RUN_FILES, RUN_FOLDERS.__contains__)
        if foreign:
            raise UserError(
                f"Output folder {path} holds a {status} tunesmith run, but also {listing(foreign)}, which tunesmith "
                "did not write. It removes only what it wrote, so it will not replace this run: move those out of "
                "the folder, or choose another --output-dir."
            )
        if not overwrite and status not in UNFINISHED:
            raise UserError(
                f"Output folder {path} already holds a {status} run. Pass --overwrite to replace it, "
                "or choose another --output-dir (or name:)."
            )
        return True

    @classmethod
    def reopen(cls, path: Path, checkpoint: Checkpoint) -> RunFolder:
        """The folder of an unfinished run, its history cut back to what `checkpoint` saw."""
        run = cls(Path(path))
        history = run.path / "history.jsonl"
        if history.is_file():
            kept = [line for line in history.read_text(encoding="utf-8").splitlines() if _before(line, checkpoint.step)]
            write_atomic(history, "".join(line + "\n" for line in kept))
        return run

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINTS

    def save_model(self, model: Any, tokenizer: Any, folder: str = "model", state_dict: Any = None) -> None:
        """model/ in Hugging Face format (a peft model writes adapter/ in peft format).

        `state_dict` replaces the model's own weights (under FSDP, the gathered ones).
        """

        def write(path: Path) -> None:
            given = {} if state_dict is None else {"state_dict": state_dict}
            model.save_pretrained(path, safe_serialization=True, **given)
            tokenizer.save_pretrained(path)

        self.save_folder(folder, write)

    def save_folder(self, name: str, write: Callable[[Path], None]) -> None:
        """A folder of the run, written beside it by `write` and then renamed into place."""
        temporary, final = self.path / temporary_name(name), self.path / name
        try:
            shutil.rmtree(temporary, ignore_errors=True)
            temporary.mkdir(parents=True)
            write(temporary)
            shutil.rmtree(final, ignore_errors=True)
            os.replace(temporary, final)
        except OSError as exc:
            shutil.rmtree(temporary, ignore_errors=True)
            raise UserError(
                f"Could not write {final} ({exc.strerror or exc}). Free some disk space, then run the "
                "same command again: it resumes from the last checkpoint."
            ) from None

    def write_json(self, name: str, payload: Any) -> None:
        write_atomic(self.path / name, json.dumps(payload, indent=2, ensure_ascii=False) + "\n")

    def write_yaml(self, name: str, payload: Any) -> None:
        write_atomic(self.path / name, yaml.safe_dump(payload, sort_keys=False, allow_unicode=True))

    def write_text(self, name: str, text: str) -> None:
        write_atomic(self.path / name, text)

    def set_status(self, status: str, **details: Any) -> None:
        record = {"status": status, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **details}
        if status == "running":
            # Lets a second `train` into this folder tell a live run from one killed with -9.
            record.update(pid=os.getpid(), host=socket.gethostname())
        self.write_json(STATUS_FILE, record)

    def append_history(self, record: dict[str, Any]) -> None:
        with open(self.path / "history.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")


def _before(line: str, step: int) -> bool:
    """Whether a history line was written before the checkpoint at `step` was."""
    try:
        record = json.loads(line)
    except ValueError:
        return False
    return isinstance(record, dict) and not record.get("final") and record.get("step", 0) <= step
