"""The old task's Fisher information, diagonal: how much each weight matters to what the old model predicts.

The empirical Fisher (Kirkpatrick et al., 2017, as most implementations compute it): the mean over old training
examples of each example's squared gradient of its loss (the negative log-likelihood of its gold label), at the old
weights. One example at a time: the squared gradient of a batch's mean is not the mean of the squared gradients.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from tunesmith.tasks.protocol import Task


def fisher_diagonal(
    model: nn.Module, examples: Iterable[dict[str, torch.Tensor]], task: Task, parameters: list[nn.Parameter]
) -> list[torch.Tensor]:
    """mean_n (d loss_n / d p)^2 for each of `parameters`, over `examples` (batches of one example each).

    The model runs in eval mode (no dropout): the Fisher of the model as it predicts. Parameters frozen for now
    (a strategy that unfreezes later) get theirs too.
    """
    was_training = model.training
    frozen = [parameter for parameter in parameters if not parameter.requires_grad]
    for parameter in frozen:
        parameter.requires_grad_(True)
    model.eval()
    sums = [torch.zeros_like(parameter, dtype=torch.float32) for parameter in parameters]
    count = 0
    for batch in examples:
        batch = dict(batch)
        labels = batch.pop("labels")
        losses, _ = task.loss(model(**batch).logits, labels)
        gradients = torch.autograd.grad(losses.sum(), parameters, allow_unused=True)
        for total, gradient in zip(sums, gradients, strict=True):
            if gradient is not None:
                total.add_(gradient.detach().float() ** 2)
        count += 1
    model.train(was_training)
    for parameter in frozen:
        parameter.requires_grad_(False)
    if count == 0:
        raise ValueError("the Fisher diagonal needs at least one example")
    return [total / count for total in sums]
