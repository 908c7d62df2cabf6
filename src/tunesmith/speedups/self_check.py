"""The check each speed patch passes when it is applied: the patched model's evaluation forward
on a small fixed padded batch against the unpatched model's, within float rounding.

A patch that reaches into a library's internals can be broken by the library's next release
without failing loudly (a renamed keyword argument is simply never seen); comparing outputs
once, on the model about to train, turns that into a refused patch instead of wrong numbers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

# Float rounding of one forward, far below any wrong computation's difference.
RTOL, ATOL = 1e-4, 1e-5
BATCH, LENGTH, PADDED = 2, 8, 3


def probe_inputs(model: nn.Module) -> dict[str, torch.Tensor]:
    """Token ids spread over the vocabulary; the second row's last `PADDED` positions are padding,
    so that the masks take the path real batches do."""
    vocabulary = model.get_input_embeddings().num_embeddings
    ids = (torch.arange(BATCH * LENGTH).view(BATCH, LENGTH) * 997 + 5) % vocabulary
    mask = torch.ones_like(ids)
    mask[1, LENGTH - PADDED :] = 0
    return {"input_ids": ids, "attention_mask": mask}


def outputs(model: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """The model's logits (or first output) in evaluation mode; each module's mode is restored."""
    with _evaluating(model), torch.no_grad():
        out = model(**inputs)
    logits = getattr(out, "logits", None)
    if logits is None:
        logits = out if isinstance(out, torch.Tensor) else out[0]
    return logits.detach().clone()


def mismatch(reference: torch.Tensor, patched: torch.Tensor) -> str | None:
    """What differs between the unpatched and the patched outputs, or None."""
    if patched.shape != reference.shape:
        return f"outputs of shape {tuple(patched.shape)} instead of {tuple(reference.shape)}"
    if not torch.allclose(patched, reference, rtol=RTOL, atol=ATOL):
        difference = (patched - reference).abs().nan_to_num(float("inf")).max().item()
        return f"outputs up to {difference:.3g} away from the unpatched model's"
    return None


@contextmanager
def _evaluating(model: nn.Module) -> Iterator[None]:
    # Per module: a strategy may keep parts of a training model in evaluation mode.
    modes: list[tuple[nn.Module, Any]] = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training
