"""The run folder every command shares (see DESIGN.md), written atomically.

`status.json` says whether the run is running, finished or failed, so a folder left
by a crash never passes for a finished run; metrics.json and model/ appear only at
the end of a successful run.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tunesmith.errors import UserError

STATUS_FILE = "status.json"
# Folders in these states hold nothing worth keeping and may be replaced by a new run.
REPLACEABLE = {"failed"}


def write_atomic(path: Path, text: str) -> None:
    """Write to a temporary file, then rename: a reader never sees half a file."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def read_status(path: Path) -> str | None:
    try:
        return json.loads((path / STATUS_FILE).read_text())["status"]
    except (OSError, ValueError, KeyError):
        return None


@dataclass
class RunFolder:
    path: Path

    @classmethod
    def create(cls, path: Path, overwrite: bool = False) -> RunFolder:
        """A fresh, empty run folder; refuses to clobber an existing run unless told to."""
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise UserError(f"Output path {path} is a file, not a folder. Choose another --output-dir.")
        if path.is_dir() and any(path.iterdir()):
            status = read_status(path)
            if not overwrite and status not in REPLACEABLE:
                held = f"a {status} run" if status else "files"
                raise UserError(
                    f"Output folder {path} already holds {held}. Pass --overwrite to replace it, "
                    "or choose another --output-dir (or name:)."
                )
            shutil.rmtree(path)
        try:
            path.mkdir(parents=True, exist_ok=True)
            probe = path / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise UserError(
                f"Cannot write to output folder {path} ({exc.strerror}). Choose another --output-dir."
            ) from None
        return cls(path)

    def write_json(self, name: str, payload: Any) -> None:
        write_atomic(self.path / name, json.dumps(payload, indent=2, ensure_ascii=False) + "\n")

    def write_yaml(self, name: str, payload: Any) -> None:
        write_atomic(self.path / name, yaml.safe_dump(payload, sort_keys=False, allow_unicode=True))

    def write_text(self, name: str, text: str) -> None:
        write_atomic(self.path / name, text)

    def set_status(self, status: str, **details: Any) -> None:
        self.write_json(STATUS_FILE, {"status": status, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **details})

    def append_history(self, record: dict[str, Any]) -> None:
        with open(self.path / "history.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
