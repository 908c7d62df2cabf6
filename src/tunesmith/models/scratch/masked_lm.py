"""The encoder with BERT's masked-language-model head, tied to the word embeddings.

    hidden states at the masked positions ─► dense ─► GELU ─► LayerNorm ─► · word embeddingsᵀ + bias ─► logits

The head runs only on the positions that have a target (the 15% or so that were masked): the
projection onto the vocabulary is the largest matrix product of a small encoder, and the other
85% of its output would be thrown away by the loss.

A model saved here is a plain transformers `BertForMaskedLM` folder (config.json and
model.safetensors), which every Auto class and so the whole fine-tuning pipeline loads as BERT;
`load_masked_lm` reads such a folder back, or any BERT checkpoint. A checkpoint without an MLM
head (the bundled MiniLM is a sentence-embedding model and ships none) gets a new one.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from tunesmith.models.scratch.encoder import Encoder, EncoderConfig, from_bert_state_dict, to_bert_state_dict

logger = logging.getLogger(__name__)
# The head runs on a multiple of this many positions (see MaskedLanguageModel.forward).
PREDICTION_BUCKET = 256

# The head's names in a BertForMaskedLM checkpoint (its decoder weight is the word embeddings).
_HEAD_NAMES = {
    "dense.weight": "cls.predictions.transform.dense.weight",
    "dense.bias": "cls.predictions.transform.dense.bias",
    "norm.weight": "cls.predictions.transform.LayerNorm.weight",
    "norm.bias": "cls.predictions.transform.LayerNorm.bias",
    "bias": "cls.predictions.bias",
}


class MaskedLMHead(nn.Module):
    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden: torch.Tensor, word_embeddings: torch.Tensor) -> torch.Tensor:
        # Tied: the output projection is the input embedding matrix, passed in rather than held, so
        # that no weight is stored twice (safetensors refuses shared tensors).
        return F.linear(self.norm(F.gelu(self.dense(hidden))), word_embeddings, self.bias)


class MaskedLanguageModel(nn.Module):
    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.head = MaskedLMHead(config)
        self.apply(_init_weights)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        predict: torch.Tensor | None = None,
    ) -> MaskedLMOutput:
        """Logits [positions, vocab] for the positions where `predict` [batch, length] is True, in row-major
        order (the order of `labels[predict]`), then rows of padding up to a multiple of PREDICTION_BUCKET;
        for every position when `predict` is None."""
        hidden, _ = self.encoder(input_ids, attention_mask, token_type_ids)
        hidden = hidden.flatten(0, 1)
        if predict is None:
            return MaskedLMOutput(self.head(hidden, self.encoder.embeddings.words.weight))
        positions = predict.flatten().nonzero().squeeze(1)
        count = positions.numel()
        # Padded to a multiple of PREDICTION_BUCKET positions, and so are the logits and the loss's tensors:
        # the count of chosen tokens differs in every batch, and on the CPU tensors of ever new sizes
        # fragmented the allocator's memory without end (resident memory grew by tens of MB a step).
        positions = F.pad(positions, (0, -count % PREDICTION_BUCKET))
        return MaskedLMOutput(self.head(hidden[positions], self.encoder.embeddings.words.weight))


class MaskedLMOutput:
    """What the training loop reads of a model's output: `.logits`."""

    def __init__(self, logits: torch.Tensor) -> None:
        self.logits = logits


def _init_weights(module: nn.Module) -> None:
    # BERT's initialisation: normal(0, 0.02) matrices, zero biases, unit LayerNorm gains.
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)
    if isinstance(module, nn.Embedding) and module.padding_idx is not None:
        with torch.no_grad():
            module.weight[module.padding_idx].zero_()
    if isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def bert_config(config: EncoderConfig) -> dict:
    """The transformers BertConfig of an encoder of this shape (post-LN; BERT has no pre-LN)."""
    if config.pre_norm:
        raise ValueError("a pre-LN encoder has no BERT equivalent: BERT normalises after each sub-block")
    return {
        "model_type": "bert",
        "architectures": ["BertForMaskedLM"],
        "vocab_size": config.vocab_size,
        "hidden_size": config.hidden_size,
        "num_hidden_layers": config.num_layers,
        "num_attention_heads": config.num_heads,
        "intermediate_size": config.intermediate_size,
        "max_position_embeddings": config.max_positions,
        "type_vocab_size": config.segments,
        "hidden_dropout_prob": config.dropout,
        "attention_probs_dropout_prob": config.attention_dropout,
        "layer_norm_eps": config.layer_norm_eps,
        "pad_token_id": config.pad_token_id,
        "hidden_act": "gelu",
        "position_embedding_type": "absolute",
        "tie_word_embeddings": True,
    }


def masked_lm_state_dict(model: MaskedLanguageModel) -> dict[str, torch.Tensor]:
    """The weights under BertForMaskedLM's names."""
    # BertForMaskedLM has no pooler (masked-LM training never trains one): it is left out.
    state = {
        f"bert.{name}": tensor for name, tensor in to_bert_state_dict(model.encoder).items() if "pooler" not in name
    }
    head = model.head.state_dict()
    state.update({bert_name: head[name] for name, bert_name in _HEAD_NAMES.items()})
    return state


def save_masked_lm(model: MaskedLanguageModel, folder: Path) -> None:
    """A BertForMaskedLM folder, written by transformers itself so that it loads as any BERT does."""
    from transformers import BertConfig, BertForMaskedLM

    bert = BertForMaskedLM(BertConfig(**bert_config(model.config)))
    missing, unexpected = bert.load_state_dict(masked_lm_state_dict(model), strict=False)
    # The decoder is tied to the word embeddings (and its bias to cls.predictions.bias): the only
    # names transformers may miss; anything else is a mapping error.
    untied = [name for name in missing if not name.startswith("cls.predictions.decoder.")]
    if untied or unexpected:
        raise RuntimeError(f"the BERT mapping is incomplete: missing {untied}, unexpected {unexpected}")
    bert.tie_weights()
    bert.save_pretrained(folder)


def load_masked_lm(state: dict[str, torch.Tensor], config: EncoderConfig) -> tuple[MaskedLanguageModel, bool]:
    """A model with a BERT checkpoint's weights; the second value is False when the checkpoint had no
    MLM head and a new one was initialised (normal(0, 0.02), tied to the loaded embeddings)."""
    model = MaskedLanguageModel(config)
    state = {name.removeprefix("bert."): tensor for name, tensor in state.items()}
    for name, tensor in model.encoder.state_dict().items():
        # A masked-LM checkpoint has no pooler: it starts as initialised (fine-tuning treats it as new).
        if name.startswith("pooler."):
            state.setdefault(f"pooler.dense.{name.removeprefix('pooler.')}", tensor)
    model.encoder = from_bert_state_dict(state, config)
    head_names = {name: bert_name for name, bert_name in _HEAD_NAMES.items() if bert_name in state}
    if len(head_names) == len(_HEAD_NAMES):
        model.head.load_state_dict({name: state[bert_name] for name, bert_name in head_names.items()})
        return model, True
    return model, False
