"""A one-layer model called as a transformers model is, and a task's cross-entropy loss: small enough to
compute the continual-learning gradients by hand."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import nn


class Linear(nn.Module):
    """logits = W x, called as a transformers model is (keyword inputs, `.logits` out)."""

    def __init__(self, weight: list[list[float]] | None = None) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.tensor(weight) if weight is not None else torch.zeros(2, 2))

    def forward(self, features: torch.Tensor) -> SimpleNamespace:
        return SimpleNamespace(logits=features @ self.weight.T)


class CrossEntropy:
    """A task's loss: per-example sums and the counts they sum over."""

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        losses = nn.functional.cross_entropy(logits, targets, reduction="none")
        return losses, torch.ones_like(losses)
