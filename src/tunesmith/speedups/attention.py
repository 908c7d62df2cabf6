"""Attention with dropout on the CPU, written out so that its mask is a sliced one (dropout.py).

torch's fused CPU attention kernel takes no dropout, so in training SDPA falls back to its
unfused math path, whose dropout draws a float per attention probability (`bernoulli_`).
Attention written out with `sliced_mask_dropout`'s mask is cheaper per layer, and whole runs
train a few percent faster (bench/RESULTS.md).

The function is registered with transformers' AttentionInterface (and SDPA's mask maker with
its AttentionMaskInterface) under `NAME`, and a model is switched to it by name. It is SDPA
itself wherever it would not help: without dropout (evaluation), off the CPU, for causal
attention without a mask (SDPA's causal kernel), for grouped-query attention, with a cache or
a position bias.

SDPA's attention function and mask maker are transformers internals, imported where they are
used: a release that moves them makes `use_sliced_mask_attention` raise ImportError, and the
speedups' self-check then leaves the model on SDPA.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from tunesmith.speedups.dropout import applies, sliced_mask_dropout

NAME = "tunesmith_sdpa"
# The self-check's variant: the written-out path without dropout (see `written_out_without_dropout`).
CHECK_NAME = "tunesmith_sdpa_check"


def sdpa_with_sliced_mask_dropout(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """transformers' attention-function signature; tensors are [batch, heads, length, head size]."""
    if applies(query, dropout) and _written_out_applies(module, query, key, attention_mask, is_causal, kwargs):
        return _written_out(query, key, value, attention_mask, scaling, dropout), None
    return _sdpa(module, query, key, value, attention_mask, dropout, scaling, is_causal, kwargs)


def written_out_without_dropout(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """The written-out path wherever `sdpa_with_sliced_mask_dropout` takes it in training, but
    without dropout. In evaluation the real function is SDPA, so a forward through it would
    check nothing; a forward through this one compares the written-out formula with SDPA."""
    if _written_out_applies(module, query, key, attention_mask, is_causal, kwargs):
        return _written_out(query, key, value, attention_mask, scaling, 0.0), None
    return _sdpa(module, query, key, value, attention_mask, dropout, scaling, is_causal, kwargs)


def _sdpa(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float,
    scaling: float | None,
    is_causal: bool | None,
    kwargs: dict[str, Any],
) -> tuple[torch.Tensor, None]:
    """transformers' own SDPA attention, where the written-out path does not apply."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    return sdpa_attention_forward(
        module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, is_causal=is_causal, **kwargs
    )


def _written_out_applies(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    attention_mask: torch.Tensor | None,
    is_causal: bool | None,
    kwargs: dict[str, Any],
) -> bool:
    # As SDPA: causal unless told otherwise, and a given mask already holds the causality.
    causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    return not (
        query.device.type != "cpu"
        or (causal and attention_mask is None)
        or key.shape[1] != query.shape[1]
        or kwargs.get("cache") is not None
        or kwargs.get("position_bias") is not None
        or (attention_mask is not None and attention_mask.dtype not in (torch.bool, query.dtype))
    )


def _written_out(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None,
    dropout: float,
) -> torch.Tensor:
    scale = query.shape[-1] ** -0.5 if scaling is None else scaling
    scores = torch.matmul(query, key.transpose(-1, -2)).mul_(scale)
    if attention_mask is not None:
        # In place: neither the matmul's nor the fill's backward reads the scores.
        if attention_mask.dtype == torch.bool:  # SDPA's masks: True where a query may attend
            # The dtype's lowest value rather than -inf, as in eager attention: no NaN in a row
            # that masks every key.
            scores.masked_fill_(~attention_mask, torch.finfo(scores.dtype).min)
        else:
            scores.add_(attention_mask)
    probabilities = torch.softmax(scores, dim=-1)
    if dropout:
        probabilities = sliced_mask_dropout(probabilities, dropout)
    return torch.matmul(probabilities, value).transpose(1, 2).contiguous()


def use_sliced_mask_attention(model: nn.Module) -> Callable[[], None] | None:
    """Switch every transformers model inside `model` that uses SDPA to `sdpa_with_sliced_mask_dropout`;
    returns what switches them back, or None where none uses SDPA. The saved config does not record
    it (transformers leaves the attention implementation out), so a saved model loads with SDPA."""
    from transformers import AttentionInterface, AttentionMaskInterface, PreTrainedModel
    from transformers.integrations.sdpa_attention import sdpa_attention_forward  # noqa: F401  (there, or refuse now)
    from transformers.masking_utils import sdpa_mask

    for name, function in ((NAME, sdpa_with_sliced_mask_dropout), (CHECK_NAME, written_out_without_dropout)):
        AttentionInterface.register(name, function)
        AttentionMaskInterface.register(name, sdpa_mask)
    switched = []
    for module in model.modules():
        if isinstance(module, PreTrainedModel) and module.config._attn_implementation == "sdpa":
            module.set_attn_implementation(NAME)
            switched.append(module)
    if not switched:
        return None

    def undo() -> None:
        for module in switched:
            module.set_attn_implementation("sdpa")

    return undo


@contextmanager
def written_out_for_the_check(model: nn.Module) -> Iterator[None]:
    """Within: the models switched to `NAME` use `written_out_without_dropout`."""
    from transformers import PreTrainedModel

    switched = [m for m in model.modules() if isinstance(m, PreTrainedModel) and m.config._attn_implementation == NAME]
    for module in switched:
        module.set_attn_implementation(CHECK_NAME)
    try:
        yield
    finally:
        for module in switched:
            module.set_attn_implementation(NAME)
