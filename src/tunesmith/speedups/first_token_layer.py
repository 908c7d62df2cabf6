"""Skip the last layer's work that a sequence head never reads.

A BERT-style sequence classifier reads one position of the encoder's last layer: the first
(the [CLS] token, or the first virtual token under prompt tuning). The last layer still
computes every position, and all but the first are thrown away: their queries, attention
output projection and feed-forward, 10 of the layer's 12 d² matmuls per token. Here the last
layer computes the first position only. Its keys and values still come from every position,
so the logits and every gradient are the full model's, to float rounding; only dropout draws
fewer random numbers. Training steps are faster by the share of the model that one layer is
(bench/cls_only_step.py, bench/RESULTS.md).

The layer's own submodules do the work, so adapters, LoRA and IA3, which replace or wrap
those submodules, apply unchanged; the weights and saved files are untouched. A call that
passes a cache (prefix tuning), under any of the names transformers releases have used, or
encoder states runs the layer's usual forward.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel

# Architectures whose layers are BERT's (attention.self.query/key/value, attention.output,
# feed_forward_chunk) and whose sequence head reads position 0 of the last layer only.
FIRST_TOKEN_HEADS = {
    "bert": "BertForSequenceClassification",
    "roberta": "RobertaForSequenceClassification",
    "xlm-roberta": "XLMRobertaForSequenceClassification",
    "electra": "ElectraForSequenceClassification",
}
# flash attention takes 2-D padding masks with its own rules for a one-token query: left alone.
ATTENTION_KINDS = ("sdpa", "eager")
# transformers 5 passes a layer's cache as `cache`; 4.x as `past_key_values`, earlier `past_key_value`.
CACHE_ARGUMENTS = ("cache", "past_key_values", "past_key_value")


def first_token_last_layer(model: nn.Module) -> Callable[[], None] | None:
    """Make the last encoder layer of the sequence classifier in `model` (itself, or wrapped by
    peft) compute the first position only; returns what restores the layer's forward, or None
    where this does not apply (another architecture or head, a decoder), leaving `model` as it was."""
    classifier = next((m for m in model.modules() if _reads_the_first_token_only(m)), None)
    if classifier is None:
        return None
    last = classifier.base_model.encoder.layer[-1]
    last.forward = partial(_first_position_forward, last, last.forward)

    def undo() -> None:
        del last.forward  # the class's forward again

    return undo


def _reads_the_first_token_only(module: nn.Module) -> bool:
    if not isinstance(module, PreTrainedModel):
        return False
    config = module.config
    return (
        FIRST_TOKEN_HEADS.get(config.model_type) == type(module).__name__
        and not config.is_decoder
        and config._attn_implementation in ATTENTION_KINDS
    )


def _first_position_forward(
    layer: nn.Module,
    full_forward: Any,
    hidden_states: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    encoder_hidden_states: torch.Tensor | None = None,
    *args: Any,
    **kwargs: Any,
) -> torch.Tensor:
    # Checkpointing wraps the class's forward, which this replaces: the last layer is then
    # stored, not recomputed; it holds about three token-wide tensors (input, keys, values).
    # Positional arguments past these three are ones this does not know: the usual forward takes them.
    passed = [encoder_hidden_states, *args, *(kwargs.get(name) for name in CACHE_ARGUMENTS)]
    if any(argument is not None for argument in passed):
        return full_forward(hidden_states, attention_mask, encoder_hidden_states, *args, **kwargs)
    attention = layer.attention.self
    batch = hidden_states.shape[0]
    first = hidden_states[:, :1]
    heads = (batch, -1, attention.num_attention_heads, attention.attention_head_size)
    query = attention.query(first).view(heads).transpose(1, 2)
    key = attention.key(hidden_states).view(heads).transpose(1, 2)
    value = attention.value(hidden_states).view(heads).transpose(1, 2)
    if attention_mask is not None and attention_mask.dim() == 4:
        attention_mask = attention_mask[:, :, :1, :]  # the first query's row (a [B,1,1,T] mask has only it)
    # SDPA for eager models too: it takes their additive float masks, and computes the same.
    mixed = nn.functional.scaled_dot_product_attention(
        query,
        key,
        value,
        attn_mask=attention_mask,
        dropout_p=attention.dropout.p if attention.training else 0.0,
        scale=attention.scaling,
    )
    attended = layer.attention.output(mixed.transpose(1, 2).reshape(batch, 1, -1), first)
    return layer.feed_forward_chunk(attended)
