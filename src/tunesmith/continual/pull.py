"""A quadratic pull of parameters toward fixed values, applied through its gradient.

penalty = (strength / 2) * sum_i weight_i * (p_i - anchor_i)^2, so d penalty / d p = strength * weight * (p - anchor).
L2-SP (Li et al., 2018) weighs every coordinate alike; EWC (Kirkpatrick et al., 2017) by the old task's Fisher
diagonal. The gradient is added to `.grad` in place once the step's data gradient is complete: no second backward,
and under data parallelism every process adds the same term to the same averaged gradient.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class Pull:
    strength: float
    parameters: list[nn.Parameter]
    anchors: list[torch.Tensor]
    # Per-coordinate weights (EWC's Fisher diagonal); None: all ones (L2-SP).
    weights: list[torch.Tensor] | None = None

    def penalty(self) -> torch.Tensor:
        """The penalty's value (differentiable), for logging and for checking the gradient against autograd."""
        total = torch.zeros((), dtype=torch.float32)
        for index, (parameter, anchor) in enumerate(zip(self.parameters, self.anchors, strict=True)):
            squared = (parameter.float() - anchor.float()) ** 2
            if self.weights is not None:
                squared = squared * self.weights[index]
            total = total + squared.sum().to(total.device)
        return self.strength / 2 * total

    @torch.no_grad()
    def add_gradient(self, scale: float = 1.0) -> None:
        """Add strength * weight * (p - anchor) to each trainable parameter's gradient, times `scale` (the factor
        the gradients already hold are scaled by: fp16's loss scale)."""
        strength = self.strength * scale
        for index, (parameter, anchor) in enumerate(zip(self.parameters, self.anchors, strict=True)):
            if not parameter.requires_grad:
                continue
            step = parameter.detach() - anchor
            if self.weights is not None:
                step = step * self.weights[index]
            if parameter.grad is None:
                parameter.grad = (strength * step).to(parameter.dtype)
            else:
                parameter.grad.add_(step.to(parameter.grad.dtype), alpha=strength)


def pull_toward_current(strength: float, parameters: Iterable[nn.Parameter]) -> Pull:
    """A pull toward the parameters' values now (the weights a run starts from)."""
    chosen = list(parameters)
    return Pull(strength, chosen, [parameter.detach().clone() for parameter in chosen])


def encoder_parameters(model: nn.Module, include_pooler: bool) -> list[nn.Parameter]:
    """The parameters of the model's encoder (`base_model_prefix`), less the pooler unless included: transformers
    counts the pooler with the head, which a backbone checkpoint may lack (it starts afresh). Frozen ones too: a
    strategy may unfreeze them later (gradual), and `Pull.add_gradient` passes over them while they are frozen."""
    prefix = getattr(model, "base_model_prefix", "")
    chosen = []
    for name, parameter in model.named_parameters():
        parts = name.split(".")
        if prefix not in parts:
            continue
        if "pooler" in parts and not include_pooler:
            continue
        chosen.append(parameter)
    return chosen
