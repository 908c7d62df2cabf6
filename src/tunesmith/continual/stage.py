"""The recipe's continual-learning and regularisation steps (recipes/finetune.py calls them in this order):

1. `read_old_task`: the old run's task and data, and whether its head is kept; before the run folder opens;
2. `protect`, once the model is built: a new head where the task is new, the old task's model on the new encoder,
   its score before training, and the gradients added at each step (L2-SP, EWC, replayed old examples);
3. `forgetting`, once training is over: the old task's score again, for metrics.json's `continual` section.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from accelerate.utils import DistributedType
from torch import nn
from torch.utils.data import DataLoader

from tunesmith.continual.ewc import fisher_diagonal
from tunesmith.continual.old_run import OldRun, new_head, old_model, read_old_run
from tunesmith.continual.pull import Pull, encoder_parameters, pull_toward_current
from tunesmith.continual.rehearsal import Replay, per_step, replay_rows
from tunesmith.errors import UserError
from tunesmith.stages.data import tokenize_split
from tunesmith.stages.evaluate import prepared_loader
from tunesmith.train.batching import model_columns
from tunesmith.train.loop import evaluate, scalars

if TYPE_CHECKING:
    from tunesmith.stages.plan import Plan

logger = logging.getLogger(__name__)


@dataclass
class Protection:
    """What a run adds to each step's gradient, and what it needs to measure the old task's forgetting."""

    pulls: list[Pull] = field(default_factory=list)
    replay: Replay | None = None
    old: OldRun | None = None
    old_model: nn.Module | None = None
    old_loader: DataLoader | None = None
    before: dict[str, float] | None = None
    # How many old rows each protection used (metrics.json).
    used: dict[str, Any] = field(default_factory=dict)

    def add_gradient(self, model: nn.Module, scale: float = 1.0) -> None:
        # Replay rescales the data gradient it mixes into; the pulls' terms come after, unscaled.
        if self.replay is not None:
            self.replay.add_gradient(model, scale)
        for pull in self.pulls:
            pull.add_gradient(scale)

    @property
    def extra_gradient(self) -> Any:
        """The loop's `extra_gradient`, or None when nothing is added."""
        return self.add_gradient if self.pulls or self.replay is not None else None


def read_old_task(plan: Plan) -> OldRun | None:
    """The old run's task and data (None without `continual.from_run`), once the setup is one these steps support."""
    check_parallelism(plan)
    path = plan.cfg.continual.from_run
    return None if path is None else read_old_run(path, plan.cfg, plan.task)


def check_parallelism(plan: Plan) -> None:
    """The pulls hold the parameters as built, which FSDP and DeepSpeed replace with shards; replay runs a second
    backward at the sync point, which data parallelism would reduce again."""
    cfg, accelerator = plan.cfg, plan.accelerator
    options = cfg.continual
    pulls = [
        key
        for key, value in (
            ("regularization.l2sp", cfg.regularization.l2sp),
            ("continual.l2sp", options.l2sp),
            ("continual.ewc", options.ewc),
        )
        if value
    ]
    if pulls and accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED):
        raise UserError(
            f"{', '.join(pulls)} under {accelerator.distributed_type.value} is not supported: the pull holds the "
            "weights as built, which the shards replace. Launch with plain data parallelism, or on one process."
        )
    if options.replay and accelerator.num_processes > 1:
        raise UserError(
            "continual.replay runs in one process only for now (its old examples' backward would be reduced across "
            "processes a second time). Launch on one process, or protect with continual.ewc or continual.l2sp."
        )


def protect(plan: Plan, model: nn.Module, old: OldRun | None, train_rows: int) -> Protection:
    cfg = plan.cfg
    protection = Protection(old=old)
    if old is None and not cfg.regularization.l2sp:
        return protection
    # Where it trains, before anything holds its weights: the anchors, the Fisher and the old head live there too
    # (Accelerate's prepare finds it moved; the parameters stay the same objects).
    model.to(plan.accelerator.device)
    if old is not None and not old.keep_head:
        new_head(model)
    if cfg.regularization.l2sp:
        # Toward the weights the run starts from, the new head (and the pooler, counted with it) left free.
        chosen = trainable(plan, encoder_parameters(model, False))
        protection.pulls.append(pull_toward_current(cfg.regularization.l2sp, chosen))
        protection.used["regularization_l2sp"] = cfg.regularization.l2sp
    if old is None:
        return protection
    options = cfg.continual
    protection.old_model = old_model(old, model)
    split = old.splits[old.evaluation_split]
    encoded, swapped = tokenize_split(old.cfg, old.task, plan.tokenizer, split, training=False)
    protection.old_loader = prepared_loader(
        old.task, plan.tokenizer, encoded, swapped, cfg.training.eval_batch_size, plan.accelerator
    )
    protection.before = score_old_task(plan, protection)
    metric = old.task.main_metric
    logger.info("Old task (%s %s) before training: %s %.4f", old.cfg.task, old.evaluation_split, metric,
                protection.before[metric])  # fmt: skip
    protection.used["head"] = "kept" if old.keep_head else "new"
    if options.l2sp:
        # Toward the old run's weights: the encoder with its pooler, and the head when it is the old one.
        chosen = trainable(plan, list(model.parameters()) if old.keep_head else encoder_parameters(model, True))
        protection.pulls.append(pull_toward_current(options.l2sp, chosen))
        protection.used["l2sp"] = options.l2sp
    old_train = old.splits["train"]
    if options.ewc:
        protection.pulls.append(ewc_pull(plan, old, protection.old_model, model))
        protection.used.update(ewc=options.ewc, ewc_examples=min(options.ewc_examples, len(old_train)))
    if options.replay:
        protection.replay = replay(plan, old, protection.old_model, train_rows)
        protection.used["replay_rows"] = len(protection.replay.rows)
        protection.used["replay_per_step"] = protection.replay.per_step
    return protection


def trainable(plan: Plan, parameters: list[nn.Parameter]) -> list[nn.Parameter]:
    """The parameters a pull needs to hold: those that train now, and those a strategy may unfreeze later (gradual).
    Frozen weights that stay frozen are left out, so that their anchors cost no memory (a peft method's base model)."""
    if plan.strategy.before_step is not None:
        return parameters
    return [parameter for parameter in parameters if parameter.requires_grad]


def ewc_pull(plan: Plan, old: OldRun, model_of_old: nn.Module, model: nn.Module) -> Pull:
    """EWC's pull toward the weights now (the old run's), each weighted by the old task's Fisher diagonal, which is
    estimated on a seeded sample of `continual.ewc_examples` old training rows."""
    options, seed = plan.cfg.continual, plan.cfg.training.seed
    train = old.splits["train"]
    sample = train.shuffle(seed=seed).select(range(min(options.ewc_examples, len(train))))
    encoded, _ = tokenize_split(old.cfg, old.task, plan.tokenizer, sample, training=False)
    collate = old.task.collator(plan.tokenizer)
    device = plan.accelerator.device
    examples = ({key: value.to(device) for key, value in collate([row]).items()} for row in model_columns(encoded))
    # The parameters both tasks share: the encoder, and the head when it is kept (an old head beside it is not).
    shared = {id(p) for p in model.parameters()}
    parameters = trainable(plan, [p for p in model_of_old.parameters() if id(p) in shared])
    fisher = fisher_diagonal(model_of_old, examples, old.task, parameters)
    anchors = [p.detach().clone() for p in parameters]
    logger.info("EWC: Fisher diagonal of the old task on %d training rows.", len(sample))
    return Pull(options.ewc, parameters, anchors, fisher)


def replay(plan: Plan, old: OldRun, model_of_old: nn.Module, train_rows: int) -> Replay:
    cfg = plan.cfg
    training, processes = cfg.training, plan.accelerator.num_processes
    train = old.splits["train"]
    rows = replay_rows(len(train), cfg.continual.replay, training.seed)
    encoded, _ = tokenize_split(old.cfg, old.task, plan.tokenizer, train.select(rows), training=True)
    batches = math.ceil(train_rows / (training.batch_size * processes))
    steps_per_epoch = math.ceil(batches / training.gradient_accumulation_steps)
    started = plan.checkpoint.step if plan.checkpoint is not None else 0
    return Replay(
        model_of_old,
        old.task,
        model_columns(encoded),
        old.task.collator(plan.tokenizer),
        list(range(len(rows))),
        per_step(len(rows), steps_per_epoch),
        training.batch_size * training.gradient_accumulation_steps * processes,
        training.seed,
        step=started,
        autocast=plan.accelerator.autocast,
    )


def score_old_task(plan: Plan, protection: Protection) -> dict[str, float]:
    """The old task's scores, in the run's precision: the model is not the one Accelerate prepared, whose forward
    autocasts by itself, so that before training the score is the old run's own."""
    assert protection.old is not None and protection.old_model is not None and protection.old_loader is not None
    with plan.accelerator.autocast():
        found = evaluate(protection.old_model, protection.old_loader, plan.accelerator, protection.old.task)
    return scalars(found)


def forgetting(plan: Plan, protection: Protection) -> dict[str, Any] | None:
    """metrics.json's `continual` section: the old task's scores before and after, and what protected it."""
    old = protection.old
    if old is None or protection.old_model is None or protection.old_loader is None or protection.before is None:
        return None
    after = score_old_task(plan, protection)
    metric = old.task.main_metric
    lost = protection.before[metric] - after[metric]
    logger.info("Old task after training: %s %.4f (forgetting %.4f)", metric, after[metric], lost)
    return {
        "from_run": str(old.path),
        "protection": protection.used,
        "old_task": {
            "task": old.cfg.task,
            "split": old.evaluation_split,
            "examples": len(old.splits[old.evaluation_split]),
            "metric": metric,
            "before": protection.before,
            "after": after,
            # The main metric's drop (higher is better for every task's main metric).
            "forgetting": lost,
        },
    }
