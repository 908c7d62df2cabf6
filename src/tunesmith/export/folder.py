"""The export folder: what it holds, and how it comes into place whole or not at all.

An export is written into a staging folder beside its destination (`.NAME.tmp-PID`) and renamed
into place only once the parity gate has passed, so that a failed or interrupted export leaves
nothing that looks finished. `export.json` is written last inside the staging folder: a folder
holding it is a finished export, and only a folder tunesmith wrote is ever replaced.

    export.json      format, quantisation, source run, the files, the gate's verdict
    parity.json      the gate's figures: max |Δlogit|, agreement, metric before/after, latency
    config.yaml      the run's config (task, columns, max_length)
    task.json        the task's state (labels, thresholds, scaling)
    labels.json      label names in id order
    model/           tokenizer and config.json, with model.safetensors (hf) or model.onnx (onnx)
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tunesmith.errors import UserError
from tunesmith.runs import foreign_entries, listing

EXPORT_FILE = "export.json"
PARITY_FILE = "parity.json"
MODEL_FOLDER = "model"
ONNX_FILE = "model.onnx"
EXPORT_FILES = frozenset({EXPORT_FILE, PARITY_FILE, "config.yaml", "task.json", "labels.json"})
EXPORT_FOLDERS = frozenset({MODEL_FOLDER})
FORMATS = ("hf", "onnx")


def is_export(path: Path) -> bool:
    return (Path(path) / EXPORT_FILE).is_file()


def read_manifest(path: Path) -> dict[str, Any]:
    """export.json, checked enough that a damaged one is named rather than half used."""
    file = Path(path) / EXPORT_FILE
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"{file} is not readable JSON ({exc}). Export the run again.") from None
    if not isinstance(manifest, dict) or manifest.get("format") not in FORMATS:
        raise UserError(f"{file} does not say which format the export is (hf or onnx). Export the run again.")
    return manifest


def default_output(run_dir: Path, fmt: str, quantize: str | None) -> Path:
    """Beside the run, not inside it: a run folder holding anything else cannot be retrained into."""
    suffix = f"-{fmt}" + (f"-{quantize}" if quantize else "")
    run_dir = Path(run_dir).resolve()
    return run_dir.with_name(run_dir.name + suffix)


def check_output(output: Path, overwrite: bool) -> None:
    """Refuse, before any work, a destination that holds anything but an earlier export of tunesmith's."""
    if output.exists() and not output.is_dir():
        raise UserError(f"--output {output} is a file. Give a folder name for the export.")
    if not output.parent.is_dir():
        raise UserError(f"--output {output}: the folder {output.parent} does not exist. Create it, or choose another.")
    if not output.is_dir() or not any(output.iterdir()):
        return
    foreign = foreign_entries(output, EXPORT_FILES, EXPORT_FOLDERS.__contains__)
    if not is_export(output) or foreign:
        what = listing(foreign or sorted(entry.name for entry in output.iterdir()))
        raise UserError(
            f"--output {output} holds {what}, which `tunesmith export` did not write. It writes only into a new or "
            "empty folder, or replaces an export of its own (with --overwrite): choose another --output."
        )
    if not overwrite:
        raise UserError(f"--output {output} already holds an export. Pass --overwrite to replace it, or choose another")


@contextlib.contextmanager
def staged(output: Path) -> Iterator[Path]:
    """A new folder beside `output` to write the export into; renamed to `output` when the block ends
    without an error, removed (it is all tunesmith's) when it does not."""
    staging = output.with_name(f".{output.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir()
    except OSError as exc:
        raise UserError(f"Cannot write beside {output} ({exc.strerror}). Choose another --output.") from None
    try:
        yield staging
        _replace(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _replace(staging: Path, output: Path) -> None:
    """Put the finished export in place; an earlier export there (checked by `check_output`) goes."""
    if output.is_dir() and any(output.iterdir()):
        old = output.with_name(f".{output.name}.old-{os.getpid()}")
        os.replace(output, old)
        os.replace(staging, output)
        shutil.rmtree(old, ignore_errors=True)
    else:
        # An empty folder is replaced by the rename itself.
        os.replace(staging, output)


def write_json(path: Path, payload: Any) -> None:
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
