"""Experiment tracking beside history.jsonl: TensorBoard event files in the run folder, Weights & Biases
and MLflow (`tracking: [tensorboard, wandb, mlflow]`).

history.jsonl stays the record every command reads; a tracker receives the same records as they
are written, so `tensorboard --logdir runs/` shows every run's curves side by side. Off unless
the config names a tracker. The config goes to TensorBoard as text (the resolved YAML), not as
hyperparameters: those take scalars only, and a run's config holds lists and long paths.

W&B and MLflow go through Accelerate's trackers (accelerate.tracking), fed the same records. Both
stay on the machine unless the user says otherwise: W&B runs offline (its files in <run>/wandb/)
unless WANDB_MODE is set, and MLflow writes a SQLite store in the run folder (<run>/mlflow.db, its
artifacts in <run>/mlflow-artifacts/) unless MLFLOW_TRACKING_URI is set. Their parameters are the
config flattened to "section.key", lists and maps as JSON, cut to MLflow's limits on keys and values.
"""

from __future__ import annotations

import json
import logging
import os
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
PACKAGES = {
    "tensorboard": ("tensorboard", "pip install tensorboard"),
    "wandb": ("wandb", "pip install 'tunesmith[wandb]'"),
    "mlflow": ("mlflow", "pip install 'tunesmith[mlflow]'"),
}
# In the run folder: W&B's offline runs (wandb.init makes wandb/ in its `dir`), MLflow's store and artifacts
# (runs.RUN_FOLDERS, RUN_FILES).
WANDB, MLFLOW_STORE, MLFLOW_ARTIFACTS = "wandb", "mlflow.db", "mlflow-artifacts"
# The experiment (MLflow) or project (W&B) runs go to unless MLFLOW_EXPERIMENT_NAME / WANDB_PROJECT say otherwise.
EXPERIMENT = "tunesmith"
# MLflow's limits on a parameter's key and value (mlflow.utils.validation; values were 500 long before 2.x's 6000).
KEY_LIMIT, VALUE_LIMIT = 250, 6000
Record = dict[str, Any]
Param = str | int | float | bool | None


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


def flat_params(config: dict[str, Any], key_limit: int = KEY_LIMIT, value_limit: int = VALUE_LIMIT) -> dict[str, Param]:
    """The config as parameters a tracker takes: "section.key" (one level: deeper maps, such as label
    descriptions, are data, not settings), scalars as they are, lists and maps as JSON; a key or value
    longer than its limit is cut, ending in "…"."""

    def cut(text: str, limit: int) -> str:
        return text if len(text) <= limit else text[: limit - 1] + "…"

    def value(raw: Any) -> Param:
        if raw is None or isinstance(raw, (bool, int, float)):
            return raw
        text = raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False, sort_keys=True)
        return cut(text, value_limit)

    params: dict[str, Param] = {}
    for key, raw in config.items():
        if isinstance(raw, dict) and raw:
            for inner, item in raw.items():
                params[cut(f"{key}.{inner}", key_limit)] = value(item)
        else:
            params[cut(key, key_limit)] = value(raw)
    return params


def record_scalars(record: Record) -> tuple[int | None, dict[str, float]]:
    """A history record as (step, {"train/loss": ..., "validation/accuracy": ...}), as TensorBoard names them."""
    step = record.get("step")
    group = record.get("split", "train")
    values = {
        f"{group}/{key}": float(value)
        for key, value in record.items()
        if key not in {"step", "split"} and not isinstance(value, bool) and isinstance(value, (int, float))
    }
    return (step if isinstance(step, int) else None), values


class AccelerateTracker:
    """A started accelerate.tracking tracker fed the history records against the optimizer step."""

    def __init__(self, tracker: Any, config: dict[str, Any], value_limit: int = VALUE_LIMIT) -> None:
        self.tracker = tracker
        tracker.start()
        tracker.store_init_configuration(flat_params(config, value_limit=value_limit))

    def log(self, record: Record) -> None:
        step, values = record_scalars(record)
        if step is not None and values:
            self.tracker.log(values, step=step)

    def close(self) -> None:
        self.tracker.finish()


def wandb_tracker(run_dir: Path, config: dict[str, Any]) -> AccelerateTracker:
    from accelerate.tracking import WandBTracker

    settings: dict[str, Any] = {"name": run_dir.name, "dir": str(run_dir)}
    if "WANDB_MODE" not in os.environ:
        # Offline unless the user chose a mode: nothing leaves the machine, and no login is asked for.
        settings["mode"] = "offline"
    return AccelerateTracker(WandBTracker(os.environ.get("WANDB_PROJECT", EXPERIMENT), **settings), config)


class MLflow(AccelerateTracker):
    """MLflow through accelerate's MLflowTracker; a SQLite store in the run folder unless MLFLOW_TRACKING_URI is set."""

    def __init__(self, run_dir: Path, config: dict[str, Any]) -> None:
        import mlflow
        from accelerate.tracking import MLflowTracker

        # mlflow's tracking URI is its own global (and environment variable): set for this run, unset after.
        self.ours = not os.environ.get("MLFLOW_TRACKING_URI")
        artifacts = None
        if self.ours:
            folder = run_dir.resolve()
            mlflow.set_tracking_uri(f"sqlite:///{folder / MLFLOW_STORE}")
            artifacts = (folder / MLFLOW_ARTIFACTS).as_uri()
        try:
            from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH as limit
        except ImportError:  # never expected: every mlflow release has it; 500 is the oldest limit
            limit = 500
        tracker = MLflowTracker(experiment_name=EXPERIMENT, logging_dir=artifacts, run_name=run_dir.name)
        try:
            super().__init__(tracker, config, value_limit=min(limit, VALUE_LIMIT))
        except BaseException:
            self._forget()
            raise

    def close(self) -> None:
        import mlflow

        try:
            mlflow.end_run()
        finally:
            self._forget()

    def _forget(self) -> None:
        import mlflow

        if self.ours:
            mlflow.set_tracking_uri(None)
            self.ours = False


TRACKERS: dict[str, Callable[[Path, dict[str, Any]], Any]] = {
    "tensorboard": TensorBoard,
    "wandb": wandb_tracker,
    "mlflow": MLflow,
}


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
