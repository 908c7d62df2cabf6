"""Model: the backbone with the task's head, prepared for training, in this order:

1. the task's model (backbone + new head, float32), seeded so that the head starts alike;
2. the speed-ups that change a layer's forward (the last layer computes the first token only);
3. activation checkpointing, which wraps the layers' class forward;
4. the strategy: what trains (freezing, peft wrapping, adapters);
5. the speed-ups that swap modules (CPU dropout), after the strategy so that LoRA's dropouts
   are swapped too;
6. the task's look at what the strategy left trainable.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from accelerate.utils import set_seed
from torch import nn

from tunesmith.models.attention_dropout import use_word_dropout_attention
from tunesmith.models.cls_only import cls_only_last_layer
from tunesmith.models.dropout import cheaper_cpu_dropout
from tunesmith.train.activation_checkpointing import checkpoint_activations
from tunesmith.train.loop import planned_steps

if TYPE_CHECKING:
    from tunesmith.stages.plan import Plan

logger = logging.getLogger(__name__)


def build_model(plan: Plan, train_rows: int) -> nn.Module:
    training = plan.cfg.training
    set_seed(training.seed)
    model = plan.task.load_model(plan.backbone)
    if training.cls_only_last_layer and cls_only_last_layer(model):
        logger.info("The last layer computes the first token only: the head reads nothing else")
    if training.gradient_checkpointing:
        checkpoint_activations(model)
    steps = planned_steps(train_rows, training, plan.accelerator.num_processes)
    model = plan.strategy.prepare(model, steps)
    if training.word_dropout:
        cheaper_cpu_dropout(model)
        use_word_dropout_attention(model)
    if plan.strategy.before_step is None:  # a schedule that unfreezes later is judged by what it ends with
        plan.task.check_trainable(model, plan.strategy.name)
    return model
