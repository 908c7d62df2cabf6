"""R-Drop (Liang et al. 2021): each batch goes through the model twice with different dropout, both passes are
trained, and the symmetric KL divergence between their predictions is added with weight `alpha`.

Per example: (loss_1 + loss_2) / 2 + alpha * (KL(P1 || P2) + KL(P2 || P1)) / 2. The task loss is the mean
of the two passes (the paper's formula adds them), which keeps the loss, and the learning rate, on plain training's
scale.
The two passes are one forward of the batch stacked twice, as the paper's code does: dropout draws its masks
independently for each row. Classification compares softmax distributions; multi-label tasks compare each
label's Bernoulli distribution, averaged over the labels as their loss is. Regression, tagging and generation
are refused by the config (no distribution over classes to compare).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional

Batch = dict[str, torch.Tensor]
TaskLoss = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def symmetric_kl(logits_1: torch.Tensor, logits_2: torch.Tensor) -> torch.Tensor:
    """Per example, (KL(P1 || P2) + KL(P2 || P1)) / 2 of the softmax distributions over the last dimension."""
    log_p, log_q = functional.log_softmax(logits_1.float(), -1), functional.log_softmax(logits_2.float(), -1)
    # KL(P||Q) + KL(Q||P) = sum (p - q)(log p - log q).
    return ((log_p.exp() - log_q.exp()) * (log_p - log_q)).sum(-1) / 2


def symmetric_bernoulli_kl(logits_1: torch.Tensor, logits_2: torch.Tensor) -> torch.Tensor:
    """Per example, the symmetric KL of each label's Bernoulli distribution, averaged over the labels."""
    a, b = logits_1.float(), logits_2.float()
    # For Bernoulli p, q: KL(p||q) + KL(q||p) = (p - q)(logit p - logit q).
    return ((torch.sigmoid(a) - torch.sigmoid(b)) * (a - b)).mean(-1) / 2


def rdrop_loss(
    model: nn.Module, task_loss: TaskLoss, alpha: float, multilabel: bool
) -> Callable[[Batch, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """The loop's loss function under R-Drop: per-example sums and counts, as `task.loss` gives them."""
    divergence = symmetric_bernoulli_kl if multilabel else symmetric_kl

    def loss(batch: Batch, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rows = labels.shape[0]
        logits = model(**{key: torch.cat([value, value]) for key, value in batch.items()}).logits
        first, second = logits[:rows], logits[rows:]
        sums_1, counts = task_loss(first, labels)
        sums_2, _ = task_loss(second, labels)
        return (sums_1 + sums_2) / 2 + alpha * divergence(first, second), counts

    return loss
