"""Train: the loop (train/loop.py) with the run folder's checkpoints and history."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from typing import TYPE_CHECKING, Any

from torch import nn

from tunesmith.runs import RunFolder
from tunesmith.stages.data import TokenizedData
from tunesmith.train.loop import TrainSummary, fit
from tunesmith.train.signals import GracefulStop
from tunesmith.train.tracking import Trackers

if TYPE_CHECKING:
    from tunesmith.stages.plan import Plan

Record = dict[str, Any]


def train(
    plan: Plan,
    model: nn.Module,
    data: TokenizedData,
    run: RunFolder,
    stop: GracefulStop,
    on_evaluation: Callable[[Record], None] | None = None,
    extra_gradient: Callable[[nn.Module, float], None] | None = None,
) -> tuple[nn.Module, TrainSummary]:
    """The trained model, restored to its best evaluation, and what training cost.

    A stop signal waits for the step in progress, which ends in a checkpoint.
    `on_evaluation` sees each validation record as it is logged (a search prunes with it).
    `extra_gradient`: added to each step's gradient (continual/stage.py `Protection`).
    """
    write = run.append_history if plan.writes else _ignore
    trackers = Trackers(plan.cfg.tracking if plan.writes else [], run.path, plan.cfg.resolved().model_dump(mode="json"))
    with stop.deferred(), closing(trackers):
        return fit(
            model,
            data.splits["train"],
            data.splits.get("validation"),
            plan.tokenizer,
            plan.task,
            plan.cfg.training,
            plan.accelerator,
            log=_with_callback(trackers.wrap(write), on_evaluation),
            checkpoint_dir=run.checkpoints,
            resume=plan.checkpoint,
            stop=stop,
            strategy=plan.strategy,
            validation_swapped=data.swapped.get("validation"),
            adversarial=plan.cfg.adversarial,
            rdrop=plan.cfg.rdrop,
            extra_gradient=extra_gradient,
        )


def _ignore(record: Record) -> None:
    pass


def _with_callback(write: Callable[[Record], None], on_evaluation: Callable[[Record], None] | None):
    if on_evaluation is None:
        return write

    def log(record: Record) -> None:
        write(record)
        if record.get("split") == "validation":
            on_evaluation(record)

    return log
