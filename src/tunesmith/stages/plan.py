"""Plan: every check on the config, the model and the run folder, before anything is written.

`plan_run` only reads: a config that cannot work, a model that cannot load, or a folder
that must not be replaced is refused here, so that bad input leaves nothing behind. The
data is checked next (stages/data.py `read_data`), also before the run folder exists.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from accelerate import Accelerator
from transformers import PreTrainedTokenizerBase

from tunesmith.config import RunConfig, validate_config
from tunesmith.continual.old_run import check_old_run
from tunesmith.errors import UserError
from tunesmith.models.backbones import check_loadable, load_tokenizer, position_limit
from tunesmith.models.loading import load_config
from tunesmith.runs import RunFolder, resume_point
from tunesmith.strategies import Strategy, check_backbone_supports, get_strategy
from tunesmith.tasks import get_task
from tunesmith.tasks.protocol import Task
from tunesmith.train.accelerator import make_accelerator
from tunesmith.train.checkpoints import Checkpoint, sharded
from tunesmith.train.precision import resolve_precision
from tunesmith.train.tracking import check_trackers

logger = logging.getLogger(__name__)


@dataclass
class Plan:
    """What a run will do, checked: the parts every later stage builds on."""

    cfg: RunConfig
    task: Task
    strategy: Strategy
    accelerator: Accelerator
    backbone: str
    tokenizer: PreTrainedTokenizerBase
    # Replace the run folder if one is there (checked by `check_run_folder`).
    overwrite: bool = False
    # The checkpoint to resume from (None: a new run), and why others were passed over.
    checkpoint: Checkpoint | None = None
    skipped: list[str] = field(default_factory=list)

    @property
    def writes(self) -> bool:
        """Whether this process writes the run folder (the main one; the others train alongside)."""
        return self.accelerator.is_main_process


def plan_run(cfg: RunConfig, overwrite: bool = False, resume: bool = False) -> Plan:
    # A continual run starts from the old run's model (continual/), checked first.
    from_run = cfg.continual.from_run
    backbone = str(check_old_run(from_run)) if from_run is not None else check_loadable(cfg.model)
    given, cfg = cfg, fit_max_length(cfg, backbone)
    task = get_task(cfg)
    strategy = get_strategy(cfg, task)
    training = cfg.training
    accelerator = make_accelerator(
        training.gradient_accumulation_steps,
        # Gradual unfreezing leaves layers without gradients for a while, which DDP must be told.
        unused_parameters=strategy.before_step is not None,
        mixed_precision=resolve_precision(training.mixed_precision),
        compile=training.compile,
    )
    check_parallelism(strategy, accelerator)
    check_trackers(cfg.tracking)
    # Every process checks the folder before the main one writes to it, so all decide alike.
    checkpoint, skipped = check_run_folder(cfg, overwrite, resume)
    accelerator.wait_for_everyone()
    task.check_backbone(backbone)
    check_backbone_supports(cfg, backbone)
    tokenizer = load_tokenizer(backbone)
    if cfg.training.max_length != given.training.max_length:
        # Not a notice: a data error found after planning must stay the one paragraph on stderr.
        logger.debug("training.max_length: %d, the positions of model %r.", cfg.training.max_length, cfg.model)
    return Plan(cfg, task, strategy, accelerator, backbone, tokenizer, overwrite, checkpoint, skipped)


def check_parallelism(strategy: Strategy, accelerator: Accelerator) -> None:
    if sharded(accelerator) and strategy.saved_as != "model":
        raise UserError(
            f"strategy {strategy.name} under FSDP is not supported yet: its adapter would be saved from one "
            "process's shard. Launch it with plain data parallelism (no FSDP config), or use full, freeze, "
            "layerwise or bitfit."
        )


def fit_max_length(cfg: RunConfig, backbone: str) -> RunConfig:
    """The config, its max_length within what the model's position embeddings cover.

    A longer max_length would crash at the first batch that long: one the user gave is refused; the
    default (256) is cut to the model's positions. The run's config.yaml records the length used.
    """
    training = cfg.training
    limit = position_limit(load_config(backbone, "backbone"))
    if limit is None or training.max_length <= limit:
        return cfg
    if "max_length" in training.model_fields_set:
        raise UserError(
            f"training.max_length {training.max_length} is longer than model {cfg.model!r} can read: its "
            f"position embeddings cover {limit} tokens (max_position_embeddings in its config.json). Set "
            f"training.max_length (--max-length) to {limit} or less."
        )
    return cfg.model_copy(update={"training": training.model_copy(update={"max_length": limit})})


def check_run_folder(cfg: RunConfig, overwrite: bool, resume: bool) -> tuple[Checkpoint | None, list[str]]:
    """The checkpoint to resume from, if any; else the folder must be new, or replaceable with `overwrite`."""
    checkpoint, skipped = resume_point(cfg.run_dir(), overwrite, resume)
    if checkpoint is not None:
        check_same_config(cfg, cfg.run_dir())
    else:
        RunFolder.check_replaceable(cfg.run_dir(), overwrite)
    return checkpoint, skipped


def check_same_config(cfg: RunConfig, run_dir: Path) -> None:
    """A run resumes only with the settings it started with: a changed schedule or data order is a different run."""
    path = run_dir / "config.yaml"
    try:
        # Read through the schema, so that a folder written before a setting was renamed compares by meaning.
        saved = _comparable(validate_config(yaml.safe_load(path.read_text(encoding="utf-8")), str(path), saved=True))
    except (OSError, yaml.YAMLError, UserError):
        saved = None
    current = _comparable(cfg.resolved())
    changes = _differences(saved, current) if isinstance(saved, dict) else ["config.yaml is missing or unreadable"]
    if changes:
        raise UserError(
            f"{run_dir} holds a checkpoint of a run with other settings ({'; '.join(changes[:5])}). "
            "Resume with the settings it started with, or pass --overwrite to start a new run there."
        )


def _comparable(cfg: RunConfig) -> dict[str, Any]:
    return yaml.safe_load(yaml.safe_dump(cfg.model_dump(mode="json")))


def _differences(saved: dict[str, Any], current: dict[str, Any], prefix: str = "") -> list[str]:
    changes = []
    for key in sorted(set(saved) | set(current)):
        before, after = saved.get(key), current.get(key)
        if isinstance(before, dict) and isinstance(after, dict):
            changes += _differences(before, after, f"{prefix}{key}.")
        elif before != after:
            changes.append(f"{prefix}{key}: {before!r} then, {after!r} now")
    return changes
