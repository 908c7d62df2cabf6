"""Attention with dropout on the CPU, written out so that its mask is a cheap one.

torch's fused CPU attention kernel takes no dropout, so in training SDPA falls back to its
unfused math path, whose dropout draws a float per attention probability (`bernoulli_`). On
2 cores that path took 2.19 ms per MiniLM layer (32 sequences of 14 tokens, forward and
backward); attention written out with `word_dropout`'s mask, as here, 1.41 ms. Whole 3,000-row
SST-2 runs trained 1.02x to 1.03x faster with it (bench/RESULTS.md).

The function is registered with transformers' AttentionInterface (and SDPA's mask maker with
its AttentionMaskInterface) under `NAME`, and a model is switched to it by name. It is SDPA
itself wherever it would not help: without dropout (evaluation), off the CPU, for causal
attention without a mask (SDPA's causal kernel), for grouped-query attention, with a cache or
a position bias.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import AttentionInterface, AttentionMaskInterface, PreTrainedModel
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import sdpa_mask

from tunesmith.speedups.dropout import applies, word_dropout

NAME = "tunesmith_sdpa"


def sdpa_with_word_dropout(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """transformers' attention-function signature; tensors are [batch, heads, length, head size]."""
    # As SDPA: causal unless told otherwise, and a given mask already holds the causality.
    causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    plain = (
        not applies(query, dropout)
        or (causal and attention_mask is None)
        or key.shape[1] != query.shape[1]
        or kwargs.get("cache") is not None
        or kwargs.get("position_bias") is not None
        or (attention_mask is not None and attention_mask.dtype not in (torch.bool, query.dtype))
    )
    if plain:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, is_causal=is_causal, **kwargs
        )
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
    probabilities = word_dropout(torch.softmax(scores, dim=-1), dropout)
    return torch.matmul(probabilities, value).transpose(1, 2).contiguous(), None


def use_word_dropout_attention(model: nn.Module) -> int:
    """Switch every transformers model inside `model` that uses SDPA to `sdpa_with_word_dropout`;
    returns how many were switched. The saved config does not record it (transformers leaves
    the attention implementation out), so a saved model loads with SDPA."""
    AttentionInterface.register(NAME, sdpa_with_word_dropout)
    AttentionMaskInterface.register(NAME, sdpa_mask)
    switched = 0
    for module in model.modules():
        if isinstance(module, PreTrainedModel) and module.config._attn_implementation == "sdpa":
            module.set_attn_implementation(NAME)
            switched += 1
    return switched
