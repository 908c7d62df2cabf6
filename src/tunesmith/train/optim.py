"""AdamW with decoupled weight decay (none on biases and norms), warm-up then linear decay."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from tunesmith.config import TrainingConfig
from tunesmith.strategies.anatomy import head_parameters

# Devices with a fused AdamW kernel in torch.
FUSED_DEVICES = ("cpu", "cuda", "mps", "xpu")


def parameter_groups(
    model: nn.Module, cfg: TrainingConfig, rate_factor: Callable[[str], float] | None = None
) -> list[dict]:
    """Decay matrices only (decaying biases and LayerNorm gains hurts); the head may have its own rate,
    and a strategy may scale each parameter's rate (layer-wise decay)."""
    head = head_parameters(model)
    head_rate = cfg.head_learning_rate or cfg.learning_rate
    groups: dict[tuple[float, float], list[nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        scale = rate_factor(name) if rate_factor else 1.0
        rate = head_rate if id(parameter) in head else cfg.learning_rate * scale
        decay = cfg.weight_decay if parameter.ndim >= 2 else 0.0
        groups.setdefault((rate, decay), []).append(parameter)
    return [{"params": params, "lr": rate, "weight_decay": decay} for (rate, decay), params in groups.items()]


def build_optimizer(
    model: nn.Module, cfg: TrainingConfig, rate_factor: Callable[[str], float] | None = None
) -> torch.optim.Optimizer:
    groups = parameter_groups(model, cfg, rate_factor)
    # The fused kernel updates all parameters in one pass: on 2 CPU cores MiniLM's AdamW step
    # takes 14 ms fused against 80 ms with foreach, a quarter of a whole training step.
    fused = all(p.device.type in FUSED_DEVICES and p.is_floating_point() for g in groups for p in g["params"])
    return torch.optim.AdamW(groups, lr=cfg.learning_rate, fused=fused, foreach=not fused)


class LinearSchedule:
    """The learning-rate factor at each step: linear warm-up over `warmup_ratio` of the steps, then linear
    decay to zero at `total_steps` (transformers' "linear" schedule, the same numbers).

    An object rather than a closure, so that a time budget can refit `total_steps` as it measures the
    steps, and LambdaLR's state_dict saves it (it keeps the __dict__ of callable objects) for an exact resume.
    """

    def __init__(self, total_steps: int, warmup_ratio: float) -> None:
        self.warmup_ratio = warmup_ratio
        self.total_steps = self.warmup_steps = 0
        self.fit(total_steps)

    def fit(self, total_steps: int) -> None:
        self.total_steps = total_steps
        self.warmup_steps = round(self.warmup_ratio * total_steps)

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return float(step) / float(max(1, self.warmup_steps))
        return max(0.0, float(self.total_steps - step) / float(max(1, self.total_steps - self.warmup_steps)))


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: TrainingConfig, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, LinearSchedule(total_steps, cfg.warmup_ratio))


def schedule_of(scheduler: torch.optim.lr_scheduler.LambdaLR) -> LinearSchedule:
    return scheduler.lr_lambdas[0]
