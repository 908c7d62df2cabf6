"""A BERT-style Transformer encoder, top to bottom.

    token ids ─► word + position + segment embeddings ─► LayerNorm ─► dropout
              ─► N × layer: self-attention, residual, LayerNorm; feed-forward (GELU), residual, LayerNorm
              ─► hidden states ─► pooler (first token, dense, tanh)

Post-LN as in BERT by default (each sub-block's output is added to its input, then normalised);
`pre_norm=True` normalises each sub-block's input instead and the stack's output once at the
end, which trains more stably from scratch. Attention is torch's scaled_dot_product_attention,
or (`attention="plain"`) the formula written out, for reading and for checking the fused one.

The parameter names are this file's own; `from_bert_state_dict` and `to_bert_state_dict` map
them to and from a BERT checkpoint's, so that any post-LN BERT-architecture model (the bundled
MiniLM included) loads here and gives the hidden states `transformers.BertModel` gives.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class EncoderConfig:
    vocab_size: int = 30522
    hidden_size: int = 384
    num_layers: int = 6
    num_heads: int = 12
    intermediate_size: int = 1536
    max_positions: int = 512
    segments: int = 2
    dropout: float = 0.1
    attention_dropout: float = 0.1
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    pre_norm: bool = False
    attention: Literal["sdpa", "plain"] = "sdpa"

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not a multiple of num_heads {self.num_heads}")

    @classmethod
    def from_bert(cls, bert: Any, **overrides: Any) -> EncoderConfig:
        """The shape of a transformers BertConfig (or its dict)."""
        get = bert.get if isinstance(bert, dict) else lambda key, default=None: getattr(bert, key, default)
        if get("hidden_act", "gelu") != "gelu" or get("position_embedding_type", "absolute") != "absolute":
            raise ValueError("only BERT's exact GELU and absolute position embeddings are written here")
        return cls(
            vocab_size=get("vocab_size"),
            hidden_size=get("hidden_size"),
            num_layers=get("num_hidden_layers"),
            num_heads=get("num_attention_heads"),
            intermediate_size=get("intermediate_size"),
            max_positions=get("max_position_embeddings"),
            segments=get("type_vocab_size"),
            dropout=get("hidden_dropout_prob"),
            attention_dropout=get("attention_probs_dropout_prob"),
            layer_norm_eps=get("layer_norm_eps"),
            pad_token_id=get("pad_token_id", 0) or 0,
            **overrides,
        )


class Embeddings(nn.Module):
    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.words = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.positions = nn.Embedding(config.max_positions, config.hidden_size)
        self.segments = nn.Embedding(config.segments, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, input_ids: torch.Tensor, segment_ids: torch.Tensor | None = None) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        if segment_ids is None:
            segment_ids = torch.zeros_like(input_ids)
        summed = self.words(input_ids) + self.positions(positions) + self.segments(segment_ids)
        return self.dropout(self.norm(summed))


class SelfAttention(nn.Module):
    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.heads, self.head_size = config.num_heads, config.hidden_size // config.num_heads
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.output = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = config.attention_dropout
        self.kind = config.attention

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """`x` [batch, length, hidden]; `keep` [batch, 1, 1, length], True where a key may be attended to."""
        batch, length, hidden = x.shape

        def split_heads(projected: torch.Tensor) -> torch.Tensor:  # [batch, heads, length, head size]
            return projected.view(batch, length, self.heads, self.head_size).transpose(1, 2)

        q, k, v = split_heads(self.query(x)), split_heads(self.key(x)), split_heads(self.value(x))
        dropout = self.dropout if self.training else 0.0
        if self.kind == "sdpa":
            mixed = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, dropout_p=dropout)
        else:
            scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.head_size)
            # The dtype's lowest value, not -inf: a row with every key masked gets no NaN.
            scores = scores.masked_fill(~keep, torch.finfo(scores.dtype).min)
            mixed = F.dropout(scores.softmax(dim=-1), dropout, self.training) @ v
        return self.output(mixed.transpose(1, 2).reshape(batch, length, hidden))


class FeedForward(nn.Module):
    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.up = nn.Linear(config.hidden_size, config.intermediate_size)
        self.down = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.gelu(self.up(x)))


class Layer(nn.Module):
    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.attention = SelfAttention(config)
        self.attention_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.feed_forward = FeedForward(config)
        self.feed_forward_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)
        self.pre_norm = config.pre_norm

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        if self.pre_norm:
            x = x + self.dropout(self.attention(self.attention_norm(x), keep))
            return x + self.dropout(self.feed_forward(self.feed_forward_norm(x)))
        x = self.attention_norm(x + self.dropout(self.attention(x, keep)))
        return self.feed_forward_norm(x + self.dropout(self.feed_forward(x)))


class Encoder(nn.Module):
    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.embeddings = Embeddings(config)
        self.layers = nn.ModuleList(Layer(config) for _ in range(config.num_layers))
        # Pre-LN leaves the last layer's output unnormalised; post-LN has normalised it already.
        self.final_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps) if config.pre_norm else None
        self.pooler = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        segment_ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Hidden states [batch, length, hidden] and the pooled first token [batch, hidden]."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        keep = attention_mask.bool()[:, None, None, :]
        x = self.embeddings(input_ids, segment_ids)
        for layer in self.layers:
            x = layer(x, keep)
        if self.final_norm is not None:
            x = self.final_norm(x)
        return x, torch.tanh(self.pooler(x[:, 0]))


# This file's parameter names and a BERT checkpoint's (BertModel's, without the "bert." prefix).
_BERT_NAMES = [
    (r"embeddings\.words\.", "embeddings.word_embeddings."),
    (r"embeddings\.positions\.", "embeddings.position_embeddings."),
    (r"embeddings\.segments\.", "embeddings.token_type_embeddings."),
    (r"embeddings\.norm\.", "embeddings.LayerNorm."),
    (r"layers\.(\d+)\.attention\.(query|key|value)\.", r"encoder.layer.\1.attention.self.\2."),
    (r"layers\.(\d+)\.attention\.output\.", r"encoder.layer.\1.attention.output.dense."),
    (r"layers\.(\d+)\.attention_norm\.", r"encoder.layer.\1.attention.output.LayerNorm."),
    (r"layers\.(\d+)\.feed_forward\.up\.", r"encoder.layer.\1.intermediate.dense."),
    (r"layers\.(\d+)\.feed_forward\.down\.", r"encoder.layer.\1.output.dense."),
    (r"layers\.(\d+)\.feed_forward_norm\.", r"encoder.layer.\1.output.LayerNorm."),
    (r"pooler\.", "pooler.dense."),
]


def _rename(name: str, table: list[tuple[str, str]]) -> str | None:
    for pattern, replacement in table:
        renamed, count = re.subn(f"^{pattern}", replacement, name)
        if count:
            return renamed
    return None


def to_bert_state_dict(encoder: Encoder) -> dict[str, torch.Tensor]:
    """The encoder's weights under BertModel's names (post-LN only: BERT has no final norm)."""
    if encoder.config.pre_norm:
        raise ValueError("a pre-LN encoder has no BERT equivalent: BERT normalises after each sub-block")
    return {_rename(name, _BERT_NAMES): tensor for name, tensor in encoder.state_dict().items()}


def from_bert_state_dict(state: dict[str, torch.Tensor], config: EncoderConfig) -> Encoder:
    """An encoder with a BERT checkpoint's weights; its "bert." prefix, task heads and buffers are ignored,
    and a weight of the encoder the checkpoint lacks is an error, never a random initialisation."""
    bert = {name.removeprefix("bert."): tensor for name, tensor in state.items()}
    encoder = Encoder(config)
    ours = {}
    for name in encoder.state_dict():
        source = _rename(name, _BERT_NAMES)
        if source not in bert:
            raise KeyError(f"the checkpoint has no {source} (for {name})")
        ours[name] = bert[source]
    encoder.load_state_dict(ours)
    return encoder
