"""The optimizer (torch's AdamW, Adam, SGD, RMSprop or Adafactor) over parameter groups, and the learning-rate
schedule (transformers' linear, cosine, cosine with hard restarts, polynomial or constant, each after a warm-up).

Parameter groups: weight decay on every parameter but those `training.no_decay` names (biases and norm gains
by default), the head's own rate, and a strategy's per-parameter rate factor (layer-wise decay).

The schedule is the LambdaLR that transformers' function returns. A time budget (training.max_time) refits it to
a new number of steps by building it again at the step reached (`refit_scheduler`); a resumed run builds it again
from the saved step and, under a budget, the fitted steps (`Progress.budget_steps`), so nothing but plain numbers
goes into a checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch import nn
from transformers import optimization

from tunesmith.config import TrainingConfig
from tunesmith.strategies.anatomy import head_parameters

# Devices with a fused AdamW kernel in torch.
FUSED_DEVICES = ("cpu", "cuda", "mps", "xpu")
# Optimizers with a fused kernel in torch 2.x (Adam's and AdamW's share it).
FUSED_OPTIMIZERS = ("adamw", "adam")

Schedule = torch.optim.lr_scheduler.LambdaLR


def decays(name: str, patterns: list[str]) -> bool:
    """Whether the parameter `name` takes weight decay: none of the `no_decay` patterns is part of it
    (case-insensitive substrings, as in the `no_decay = ["bias", "LayerNorm.weight"]` of BERT's recipe)."""
    lowered = name.lower()
    return not any(pattern.lower() in lowered for pattern in patterns)


def parameter_groups(
    model: nn.Module, cfg: TrainingConfig, rate_factor: Callable[[str], float] | None = None
) -> list[dict]:
    """Decay all but the `no_decay` parameters (decaying biases and LayerNorm gains hurts); the head may have its
    own rate, and a strategy may scale each parameter's rate (layer-wise decay)."""
    head = head_parameters(model)
    head_rate = cfg.head_learning_rate or cfg.learning_rate
    groups: dict[tuple[float, float], list[nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        scale = rate_factor(name) if rate_factor else 1.0
        rate = head_rate if id(parameter) in head else cfg.learning_rate * scale
        decay = cfg.weight_decay if decays(name, cfg.no_decay) else 0.0
        groups.setdefault((rate, decay), []).append(parameter)
    return [{"params": params, "lr": rate, "weight_decay": decay} for (rate, decay), params in groups.items()]


def build_optimizer(
    model: nn.Module, cfg: TrainingConfig, rate_factor: Callable[[str], float] | None = None
) -> torch.optim.Optimizer:
    groups = parameter_groups(model, cfg, rate_factor)
    name, rate = cfg.optimizer, cfg.learning_rate
    # The fused kernel updates all parameters in one pass: on 2 CPU cores MiniLM's AdamW step
    # takes 14 ms fused against 80 ms with foreach, a quarter of a whole training step.
    fused = name in FUSED_OPTIMIZERS and all(
        p.device.type in FUSED_DEVICES and p.is_floating_point() for g in groups for p in g["params"]
    )
    betas = tuple(cfg.betas)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=rate, betas=betas, eps=cfg.eps, fused=fused, foreach=not fused)
    if name == "adam":
        # torch's Adam adds the decay to the gradient (L2), as the name says; AdamW decouples it.
        return torch.optim.Adam(groups, lr=rate, betas=betas, eps=cfg.eps, fused=fused, foreach=not fused)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=rate, momentum=cfg.momentum, nesterov=cfg.nesterov)
    if name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=rate, eps=cfg.eps, momentum=cfg.momentum)
    # torch's Adafactor takes the schedule's rate as the cap of its relative step (see docs/optimization.md).
    return torch.optim.Adafactor(groups, lr=rate)


def warmup_steps(cfg: TrainingConfig, total_steps: int) -> int:
    """The warm-up in steps: `warmup_steps` as given, else `warmup_ratio` of the steps, rounded."""
    if cfg.warmup_steps is not None:
        return cfg.warmup_steps
    return round((cfg.warmup_ratio or 0.0) * total_steps)


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: TrainingConfig, total_steps: int, last_step: int = 0
) -> Schedule:
    """transformers' schedule `cfg.scheduler` over `total_steps`, standing at `last_step` steps taken.

    From a `last_step` above 0 the optimizer's groups must hold `initial_lr` (a schedule built on them before, or
    their restored state): the rates are then set for that step.
    """
    warmup = warmup_steps(cfg, total_steps)
    functions: dict[str, Callable[..., Schedule]] = {
        "linear": partial(optimization.get_linear_schedule_with_warmup, num_training_steps=total_steps),
        "cosine": partial(optimization.get_cosine_schedule_with_warmup, num_training_steps=total_steps),
        "cosine_with_restarts": partial(
            optimization.get_cosine_with_hard_restarts_schedule_with_warmup,
            num_training_steps=total_steps,
            num_cycles=cfg.cycles,
        ),
        "polynomial": partial(
            optimization.get_polynomial_decay_schedule_with_warmup,
            num_training_steps=total_steps,
            lr_end=cfg.end_learning_rate,
            power=cfg.power,
        ),
        "constant": optimization.get_constant_schedule_with_warmup,
    }
    return functions[cfg.scheduler](optimizer, num_warmup_steps=warmup, last_epoch=last_step - 1)


def refit_scheduler(scheduler: Schedule, cfg: TrainingConfig, total_steps: int) -> Schedule:
    """The same schedule at the same step, over `total_steps` instead (a time budget's new plan): from this
    step on, the rate is what the schedule gives for that many steps (warm-up by ratio refitted too)."""
    return build_scheduler(scheduler.optimizer, cfg, total_steps, last_step=scheduler.last_epoch)
