"""Model: the backbone with the task's head, prepared for training, in this order:

1. the task's model (backbone + new head, float32), seeded so that the head starts alike;
2. activation checkpointing, which wraps the layers' class forward;
3. the strategy: what trains (freezing, peft wrapping, adapters);
4. the CPU speed-ups (speedups/), after the strategy so that LoRA's dropouts are swapped too,
   each checked against the model as the strategy left it;
5. the task's look at what the strategy left trainable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from accelerate.utils import set_seed
from torch import nn

from tunesmith.speedups import apply_speedups
from tunesmith.train.activation_checkpointing import checkpoint_activations
from tunesmith.train.loop import planned_steps

if TYPE_CHECKING:
    from tunesmith.stages.plan import Plan


def build_model(plan: Plan, train_rows: int) -> nn.Module:
    training = plan.cfg.training
    set_seed(training.seed)
    model = plan.task.load_model(plan.backbone)
    if training.gradient_checkpointing:
        checkpoint_activations(model)
    steps = planned_steps(train_rows, training, plan.accelerator.num_processes)
    model = plan.strategy.prepare(model, steps)
    apply_speedups(model, training, plan.accelerator.device)
    if plan.strategy.before_step is None:  # a schedule that unfreezes later is judged by what it ends with
        plan.task.check_trainable(model, plan.strategy.name)
    return model
