"""Experiment tracking beside history.jsonl: TensorBoard event files in the run folder (`tracking: [tensorboard]`).

history.jsonl stays the record every command reads; a tracker receives the same records as they
are written, so `tensorboard --logdir runs/` shows every run's curves side by side. Off unless
the config names a tracker. The config goes in as text (the resolved YAML), not as TensorBoard
hyperparameters: those take scalars only, and a run's config holds lists and long paths.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import yaml

from tunesmith.errors import UserError

logger = logging.getLogger(__name__)

# The folder inside the run folder (runs.RUN_FOLDERS).
TENSORBOARD = "tensorboard"
# The package each tracker needs, and how to get it.
PACKAGES = {"tensorboard": ("tensorboard", "pip install tensorboard")}
Record = dict[str, Any]


def check_trackers(names: list[str]) -> None:
    """Refuse, before anything is written, a tracker whose package is not installed."""
    for name in names:
        package, install = PACKAGES[name]
        if find_spec(package) is None:
            raise UserError(
                f"tracking: {name} needs the {package} package, which is not installed. Install it ({install}) "
                f"or drop {name} from tracking."
            )


class TensorBoard:
    """Scalars of each history record under train/ or validation/, against the optimizer step."""

    def __init__(self, run_dir: Path, config: dict[str, Any]) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(run_dir / TENSORBOARD))
        text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
        # Markdown: four spaces make the YAML a code block in TensorBoard's text tab.
        self.writer.add_text("config", "\n".join("    " + line for line in text.splitlines()), global_step=0)

    def log(self, record: Record) -> None:
        step = record.get("step")
        if not isinstance(step, int):
            return
        group = record.get("split", "train")
        for key, value in record.items():
            if key in {"step", "split"} or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            self.writer.add_scalar(f"{group}/{key}", value, global_step=step)

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()


TRACKERS: dict[str, Callable[[Path, dict[str, Any]], Any]] = {"tensorboard": TensorBoard}


class Trackers:
    """The configured trackers, fed the history records; none at all when tracking is off."""

    def __init__(self, names: list[str], run_dir: Path, config: dict[str, Any]) -> None:
        self.open = [TRACKERS[name](run_dir, config) for name in names]

    def wrap(self, write: Callable[[Record], None]) -> Callable[[Record], None]:
        if not self.open:
            return write

        def log(record: Record) -> None:
            write(record)
            for tracker in self.open:
                tracker.log(record)

        return log

    def close(self) -> None:
        for tracker in self.open:
            tracker.close()
        self.open = []
