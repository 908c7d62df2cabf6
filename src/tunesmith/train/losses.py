"""Loss functions the tasks train with (config section `loss:`, docs/losses.md).

Each function is an ordinary differentiable function of the logits, so it composes with
anything that perturbs the inputs or the weights (adversarial training, LoRA). The tasks
turn their outputs into the loop's per-example sums and counts.

Class weights follow torch's convention for a weighted mean: the sum of weighted losses
over the sum of the weights of the targets (`F.cross_entropy(weight=...)`). The tasks give
the loop each example's target weight as its count, so the loop's mean, and its mean over
the micro-batches of an accumulated step, is that weighted mean.
Focal loss has no torch core function (torchvision's `sigmoid_focal_loss` is the reference
for the sigmoid form; torchvision is not a dependency), so it is written here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F  # noqa: N812 (torch's own spelling)

from tunesmith.errors import UserError

IGNORE = -100
# 1 - p_t is kept off 0, where (1 - p_t) ** gamma has an infinite slope for gamma < 1 (NaN gradients).
_TINY = 1e-12


def single_label(
    logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    focal: bool = False,
    gamma: float = 2.0,
    weight: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-element loss and per-element weight for logits [N, C] and class ids [N] (IGNORE skipped).

    Cross-entropy is torch's, with its class weights and label smoothing: the sum of the losses
    over the sum of the weights is `F.cross_entropy(..., reduction="mean")`. Focal loss (Lin et
    al. 2017, softmax form) is -w_y (1 - p_y)^gamma log p_y, averaged the same way, so that
    gamma = 0 is the weighted cross-entropy. An ignored element has loss 0 and weight 0.
    """
    logits = logits.float()
    keep = targets != IGNORE
    safe = targets.masked_fill(~keep, 0)
    target_weight = keep.float() if weight is None else weight.to(logits.device)[safe] * keep
    if not focal:
        losses = F.cross_entropy(
            logits, targets, weight=weight, ignore_index=IGNORE, label_smoothing=label_smoothing, reduction="none"
        )
        return losses, target_weight
    log_p = F.log_softmax(logits, dim=-1).gather(-1, safe.unsqueeze(-1)).squeeze(-1)
    modulating = (1 - log_p.exp()).clamp(min=_TINY) ** gamma
    losses = -modulating * log_p * target_weight
    return losses, target_weight


def binary(
    logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    focal: bool = False,
    gamma: float = 2.0,
    alpha: float | None = None,
    pos_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-element loss of independent sigmoid outputs (multi-label), same shape as the logits.

    BCE is torch's, with `pos_weight` per label. Focal is torchvision's `sigmoid_focal_loss`
    without reduction: BCE * (1 - p_t)^gamma, times alpha_t = alpha for positives and
    1 - alpha for negatives when alpha is given; gamma = 0 without alpha is BCE.
    """
    logits, targets = logits.float(), targets.float()
    if not focal:
        return F.binary_cross_entropy_with_logits(logits, targets, pos_weight=pos_weight, reduction="none")
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p = torch.sigmoid(logits)
    p_t = p * targets + (1 - p) * (1 - targets)
    losses = bce * (1 - p_t).clamp(min=_TINY) ** gamma
    if alpha is not None:
        losses = losses * (alpha * targets + (1 - alpha) * (1 - targets))
    return losses


def regression(predicted: torch.Tensor, targets: torch.Tensor, *, huber: bool, delta: float = 1.0) -> torch.Tensor:
    """Per-element squared error, or Huber loss with threshold `delta` (torch's)."""
    predicted, targets = predicted.float(), targets.float()
    if huber:
        return F.huber_loss(predicted, targets, delta=delta, reduction="none")
    return F.mse_loss(predicted, targets, reduction="none")


def class_weights(counts: Sequence[int], method: str, beta: float = 0.999) -> list[float]:
    """Class weights from training counts.

    "inverse": n / (C * n_c), scikit-learn's `compute_class_weight("balanced")`.
    "effective": the inverse of the effective number of samples (Cui et al. 2019),
    (1 - beta) / (1 - beta^n_c), scaled to sum to C as in the paper.
    A class absent from training gets the largest weight of the others: it is the rarest, and
    a finite weight keeps label smoothing's terms for it finite.
    """
    present = [n for n in counts if n > 0]
    if not present:
        raise ValueError("no class has a training example")
    total, classes = sum(counts), len(counts)
    if method == "inverse":
        raw = [total / (classes * n) if n else 0.0 for n in counts]
    elif method == "effective":
        raw = [(1 - beta) / (1 - beta**n) if n else 0.0 for n in counts]
        scale = classes / sum(raw)
        raw = [w * scale for w in raw]
    else:
        raise ValueError(f"unknown class weighting {method!r}")
    largest = max(raw)
    return [w if n else largest for w, n in zip(raw, counts, strict=True)]


def positive_weights(positives: Sequence[int], total: int) -> list[float]:
    """Each label's negatives over its positives in training, BCE's `pos_weight` that balances them
    (torch's BCEWithLogitsLoss docs); 1 for a label without positives."""
    return [(total - n) / n if n else 1.0 for n in positives]


def resolve_weights(
    given: str | list[float] | dict[str, float], names: list[str], computed: Callable[[], list[float]], key: str
) -> list[float] | None:
    """The weights `key` (loss.class_weights or loss.pos_weight) asks for, one per name in `names`
    order: None for "none", `computed()` (from training counts) for a method's name, or the list
    or {label: weight} map given (labels left out of a map weigh 1)."""
    if given == "none":
        return None
    if isinstance(given, str):
        return computed()
    if isinstance(given, list):
        if len(given) != len(names):
            raise UserError(
                f"{key} lists {len(given)} weights but there are {len(names)} labels ({', '.join(names[:20])}). "
                "Give one weight per label, in that order, or a map {label: weight}."
            )
        return [float(w) for w in given]
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise UserError(
            f"{key} names {', '.join(map(repr, unknown))}, not a training label "
            f"(labels: {', '.join(names[:20])}). Fix the name or drop it."
        )
    return [float(given.get(name, 1.0)) for name in names]


def loop_weights(weights: list[float] | None, device: torch.device) -> torch.Tensor | None:
    """Class weights as the loss functions take them, scaled so that the smallest is 1.

    A weighted mean does not change with the scale, and the loop counts a batch whose weights
    sum below 1 as 1 (so that a batch of only ignored tokens keeps a finite loss): at least 1 per
    example keeps that from ever reaching a batch with examples in it.
    """
    if weights is None:
        return None
    tensor = torch.tensor(weights, dtype=torch.float32, device=device)
    return tensor / tensor.min()
