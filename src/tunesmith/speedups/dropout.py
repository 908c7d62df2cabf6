"""Dropout on the CPU with masks from 16-bit slices of 64-bit random words.

torch's CPU dropout draws a float per element from its Mersenne twister (`bernoulli_`), a
sizeable share of a MiniLM training step on 2 cores. Here one 64-bit draw from the same
generator gives four 16-bit uniform integers, each compared with a threshold: forward and
backward together about twice as cheap (bench/RESULTS.md). Backward keeps the mask as bytes.

An element is kept with probability 1 - round(p·65536)/65536, within 8e-6 of 1 - p, and kept
elements are scaled by the inverse of that probability, so every output's expectation is its
input, as with torch's dropout. Draws come from torch's default CPU generator, so a seeded run
repeats exactly. On other devices (CUDA's dropout is fused and fast) and in evaluation this is
torch's dropout.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

# One 16-bit integer per element: p is rounded to a multiple of 1/65536.
LEVELS = 1 << 16


class SlicedMaskDropout(nn.Dropout):
    """nn.Dropout whose CPU training masks come from 16-bit slices of 64-bit random words."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not self.training or not applies(input, self.p) or self.inplace:
            return super().forward(input)
        return sliced_mask_dropout(input, self.p)


def applies(input: torch.Tensor, p: float) -> bool:
    """Whether `sliced_mask_dropout` takes `input` at rate `p`: a CPU tensor, with p not rounding to 0 or 1."""
    return input.device.type == "cpu" and round(p * LEVELS) not in (0, LEVELS)


def sliced_mask_dropout(input: torch.Tensor, p: float) -> torch.Tensor:
    """Training-mode dropout of `input` at rate `p`, where `applies(input, p)`."""
    dropped = round(p * LEVELS)
    count = input.numel()
    # random_ over the whole int64 range: every one of the 64 bits is uniform.
    words = torch.empty((count + 3) // 4, dtype=torch.int64).random_(torch.iinfo(torch.int64).min, None)
    uniform = words.view(torch.int16)[:count].view(input.shape)  # each in [-32768, 32767]
    keep = uniform >= torch.iinfo(torch.int16).min + dropped
    return _KeepAndScale.apply(input, keep, LEVELS / (LEVELS - dropped))


class _KeepAndScale(torch.autograd.Function):
    """`input * keep * scale`, saving the boolean mask for backward: a byte per element where a
    float noise tensor would keep four (lower peak memory, same speed: bench/RESULTS.md)."""

    @staticmethod
    def forward(ctx, input: torch.Tensor, keep: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.save_for_backward(keep)
        ctx.scale = scale
        return input.mul(keep).mul_(scale)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (keep,) = ctx.saved_tensors
        return grad.mul(keep).mul_(ctx.scale), None, None


def use_sliced_mask_dropout(model: nn.Module) -> Callable[[], None] | None:
    """Swap every plain nn.Dropout in `model` for a SlicedMaskDropout of the same p; returns
    what puts them back, or None where `model` has none."""
    swapped: list[tuple[nn.Module, str, nn.Dropout]] = []
    for parent in model.modules():
        for name, child in parent.named_children():
            if type(child) is nn.Dropout:
                setattr(parent, name, SlicedMaskDropout(child.p, child.inplace).train(child.training))
                swapped.append((parent, name, child))
    if not swapped:
        return None

    def undo() -> None:
        for parent, name, child in swapped:
            setattr(parent, name, child)

    return undo


def check_statistics(p: float = 0.25, elements: int = 1 << 16) -> str | None:
    """What is wrong with the masks this torch release draws, or None. In evaluation this dropout
    is torch's, so a model's forward cannot test it: this tests its training masks directly,
    on one small tensor. Each of the four slices of a word must keep 1 - p of its elements
    (within 6 standard errors, so a correct mask fails once in 10^8 checks) and kept elements
    must be scaled by the inverse of the kept probability. Draws from the default generator,
    whose state the caller restores."""
    dropped = round(p * LEVELS)
    kept_probability = 1 - dropped / LEVELS
    output = sliced_mask_dropout(torch.ones(elements), p)
    kept = output != 0
    if not torch.all(output[kept] == LEVELS / (LEVELS - dropped)):
        return "kept elements are not scaled by the inverse of the kept probability"
    per_slice = elements // 4
    error = (kept_probability * (1 - kept_probability) / per_slice) ** 0.5
    for offset in range(4):
        share = kept[offset::4].float().mean().item()
        if abs(share - kept_probability) > 6 * error:
            return f"slice {offset} of the random words keeps {share:.4f} of its elements, not {kept_probability:.4f}"
    return None
