"""AdamW with decoupled weight decay (none on biases and norms), warm-up then linear decay."""

from __future__ import annotations

import torch
from torch import nn
from transformers import get_scheduler

from tunesmith.config import TrainingConfig


def is_head(name: str, model: nn.Module) -> bool:
    """The task head: whatever lies outside the backbone, plus the backbone's pooler.

    The pooler feeds only the head, and sentence-embedding checkpoints (the bundled
    MiniLM among them) never trained it: there it is as new as the classifier.
    """
    prefix = getattr(model, "base_model_prefix", "")
    outside_backbone = bool(prefix) and hasattr(model, prefix) and not name.startswith(f"{prefix}.")
    return outside_backbone or ".pooler." in name


def parameter_groups(model: nn.Module, cfg: TrainingConfig) -> list[dict]:
    """Decay matrices only (decaying biases and LayerNorm gains hurts); the head may have its own rate."""
    head_rate = cfg.head_learning_rate or cfg.learning_rate
    groups: dict[tuple[float, float], list[nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        rate = head_rate if is_head(name, model) else cfg.learning_rate
        decay = cfg.weight_decay if parameter.ndim >= 2 else 0.0
        groups.setdefault((rate, decay), []).append(parameter)
    return [{"params": params, "lr": rate, "weight_decay": decay} for (rate, decay), params in groups.items()]


def build_optimizer(model: nn.Module, cfg: TrainingConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(parameter_groups(model, cfg), lr=cfg.learning_rate, foreach=True)


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: TrainingConfig, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler:
    return get_scheduler(
        "linear",
        optimizer,
        num_warmup_steps=round(cfg.warmup_ratio * total_steps),
        num_training_steps=total_steps,
    )
