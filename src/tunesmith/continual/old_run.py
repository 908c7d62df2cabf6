"""The old run a continual run continues: checked before anything is written, its task and data read as it
read them, and its model rebuilt around the new run's encoder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tunesmith.config import RunConfig
from tunesmith.data.splits import load_splits
from tunesmith.errors import UserError
from tunesmith.models.loading import check_model_folder
from tunesmith.runs import check_finished, run_config
from tunesmith.tasks import TASKS, get_task, reading_options
from tunesmith.tasks.protocol import Task

FIELD = "continual.from_run"


@dataclass
class OldRun:
    path: Path
    cfg: RunConfig
    task: Task
    # The old run's splits as it read them (carved and subsampled alike), labels encoded by its task.
    splits: dict[str, Any]
    # Whether the new run keeps the old head and labels (same task, new data) or trains a new head.
    keep_head: bool

    @property
    def evaluation_split(self) -> str:
        """The split the forgetting is measured on: validation, else test."""
        return "validation" if "validation" in self.splits else "test"


def check_old_run(path: Path) -> Path:
    """The old run's model/ folder, once the run is a finished fine-tuning run whose whole model was saved."""
    try:
        check_finished(path)
        cfg = run_config(path)
    except UserError as exc:
        raise UserError(f"{FIELD}: {exc}") from None
    if cfg.method != "finetune":
        raise UserError(
            f"{FIELD}: {path} is a {cfg.method} run, which trains no encoder to continue from. Give a run "
            "of method finetune."
        )
    if TASKS[cfg.task].generative:
        raise UserError(f"{FIELD}: {path} is a {cfg.task} run; continual learning continues encoder tasks only.")
    model = path / "model"
    if not (model / "config.json").is_file():
        raise UserError(
            f"{FIELD}: {path} saved only an adapter (strategy {cfg.strategy}), not its whole model. Continue from a "
            "run whose model/ holds every weight: one of a full or freezing strategy, or with the adapter merged."
        )
    check_model_folder(model, "run")
    return model


def read_old_run(path: Path, new: RunConfig, new_task: Task) -> OldRun:
    """The old run's task and data, and whether its head is kept: read and checked, nothing written."""
    from tunesmith.predictor import saved_task_state

    cfg = run_config(path)
    task = get_task(cfg, saved_task_state(path))
    same = cfg.task == new.task and list(task.names) == list(new_task.names)
    head = new.continual.head
    if head == "keep" and not same:
        what = (
            f"task {cfg.task}, this run task {new.task}"
            if cfg.task != new.task
            else f"labels {task.names}, this run's data {new_task.names}"
        )
        raise UserError(
            f"continual.head keep continues the old task on new data, so the label sets must agree; they do not "
            f"(the old run has {what}). Fix the new data's labels, or set continual.head: new to train a new head."
        )
    if TASKS[cfg.task].token_level != TASKS[new.task].token_level:
        raise UserError(
            f"{FIELD}: the old run's task {cfg.task} and this run's task {new.task} read their inputs differently "
            "(per token, per text); continual learning between them is not supported."
        )
    try:
        loaded = load_splits(cfg.data, cfg.training.seed, **reading_options(cfg))
        splits = {name: task.encode(split, loaded.sources[name]) for name, split in loaded.splits.items()}
    except UserError as exc:
        raise UserError(f"{FIELD}: reading the old run's data as its config.yaml says: {exc}") from None
    keep = head == "keep" or (head == "auto" and same)
    return OldRun(path, cfg, task, splits, keep)


def old_model(old: OldRun, new_model: nn.Module) -> nn.Module:
    """The old task's model on the new run's encoder: the new model itself when its head is kept, else the old
    run's model with its encoder replaced by the new model's (one module, shared), the old head frozen."""
    if old.keep_head:
        return new_model
    model = old.task.load_trained(old.path / "model")
    prefix = model.base_model_prefix
    if getattr(type(new_model), "base_model_prefix", None) != prefix:
        raise UserError(
            f"{FIELD}: the old run's model ({type(model).__name__}) and this run's ({type(new_model).__name__}) do "
            "not share an encoder."
        )
    # The old head stays as it was; the shared encoder trains as the new run's strategy says.
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    setattr(model, prefix, getattr(new_model, prefix))
    device = next(new_model.parameters()).device
    return model.to(device)


@torch.no_grad()
def new_head(model: nn.Module) -> None:
    """Start every module outside the encoder afresh (normal(0, initializer_range) weights, zero biases, as BERT
    starts its head): loaded from the old run where shapes agreed, the head would otherwise be the old task's."""
    prefix = model.base_model_prefix
    std = getattr(model.config, "initializer_range", 0.02)
    for name, child in model.named_children():
        if name == prefix:
            continue
        for module in child.modules():
            if isinstance(module, nn.Linear):
                module.weight.normal_(0.0, std)
                if module.bias is not None:
                    module.bias.zero_()
