"""The model a pretraining run trains, and how it is saved.

- mlm from scratch: the encoder of models/scratch with its tied masked-LM head, shaped by `architecture`.
- mlm continued (domain- or task-adaptive): a BERT checkpoint loaded into that same encoder; a checkpoint
  without an MLM head (the bundled MiniLM) gets a new one, and the log says so. With
  `vocabulary.add_tokens`, the new tokens' rows are added first (pretrain/vocabulary.py).
- causal: a transformers decoder (GPT-2 or Llama) of the configured size, from scratch: only the
  encoder is written by hand.

Either way model/ is a plain transformers folder: BertForMaskedLM for the encoder, so that every
fine-tuning task and strategy loads it as the BERT it is.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from tunesmith.errors import UserError
from tunesmith.models.loading import load_weights
from tunesmith.models.scratch.encoder import EncoderConfig
from tunesmith.models.scratch.masked_lm import MaskedLanguageModel, load_masked_lm, save_masked_lm
from tunesmith.pretrain.config import ArchitectureConfig, PretrainConfig
from tunesmith.pretrain.vocabulary import NewToken, initial_rows

logger = logging.getLogger(__name__)


def encoder_from_scratch(architecture: ArchitectureConfig, tokenizer: PreTrainedTokenizerBase) -> MaskedLanguageModel:
    config = EncoderConfig(
        vocab_size=len(tokenizer),
        hidden_size=architecture.hidden_size,
        num_layers=architecture.num_layers,
        num_heads=architecture.num_heads,
        intermediate_size=architecture.intermediate_size,
        max_positions=architecture.max_positions,
        dropout=architecture.dropout,
        attention_dropout=architecture.dropout,
        pad_token_id=tokenizer.pad_token_id,
    )
    return MaskedLanguageModel(config)


def continued_encoder(resolved: str, name: str, added: list[NewToken]) -> MaskedLanguageModel:
    """A BERT checkpoint as a masked LM, its vocabulary grown by `added`."""
    from transformers import BertForMaskedLM

    missing: set[str] = set()
    bert = load_weights(BertForMaskedLM, resolved, "backbone", missing=missing)
    if bert.config.model_type != "bert":
        raise UserError(
            f"Model {name!r} is a {bert.config.model_type} model: continued masked-LM pretraining loads BERT-"
            "architecture models into tunesmith's encoder. Use a BERT model (minilm is one)."
        )
    config = EncoderConfig.from_bert(bert.config)
    # What the checkpoint held: transformers fills what it lacked with random weights.
    held = {name: tensor for name, tensor in bert.state_dict().items() if name not in missing}
    model, had_head = load_masked_lm(held, config)
    if not had_head:
        logger.warning(
            "Model %r has no masked-LM head (it is not a masked-LM checkpoint): a new one, tied to its word "
            "embeddings, starts from random and trains with the rest.",
            name,
        )
    if added:
        grow_vocabulary(model, added)
    return model


def grow_vocabulary(model: MaskedLanguageModel, added: list[NewToken]) -> None:
    """New rows for the word embeddings and the head's bias, each the mean of the token's old pieces."""
    words = model.encoder.embeddings.words
    with torch.no_grad():
        weight = torch.cat([words.weight, initial_rows(words.weight, added)])
        bias = torch.cat([model.head.bias, initial_rows(model.head.bias[:, None], added)[:, 0]])
    grown = nn.Embedding(weight.shape[0], weight.shape[1], padding_idx=words.padding_idx)
    grown.weight = nn.Parameter(weight)
    model.encoder.embeddings.words = grown
    model.head.bias = nn.Parameter(bias)
    model.config.vocab_size = model.encoder.config.vocab_size = weight.shape[0]


def decoder_from_scratch(architecture: ArchitectureConfig, tokenizer: PreTrainedTokenizerBase) -> nn.Module:
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    a = architecture
    special = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
               "pad_token_id": tokenizer.pad_token_id}  # fmt: skip
    if a.decoder == "gpt2":
        config = GPT2Config(
            vocab_size=len(tokenizer), n_positions=a.max_positions, n_embd=a.hidden_size, n_layer=a.num_layers,
            n_head=a.num_heads, n_inner=a.intermediate_size, resid_pdrop=a.dropout, embd_pdrop=a.dropout,
            attn_pdrop=a.dropout, **special,
        )  # fmt: skip
        return GPT2LMHeadModel(config)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=a.hidden_size, intermediate_size=a.intermediate_size,
        num_hidden_layers=a.num_layers, num_attention_heads=a.num_heads, max_position_embeddings=a.max_positions,
        attention_dropout=a.dropout, tie_word_embeddings=True, **special,
    )  # fmt: skip
    return LlamaForCausalLM(config)


def save_pretrained_model(model: nn.Module, tokenizer: PreTrainedTokenizerBase, folder: Path) -> None:
    if isinstance(model, MaskedLanguageModel):
        save_masked_lm(model, folder)
    else:
        model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)


def check_tokenizer_fits(cfg: PretrainConfig, tokenizer: PreTrainedTokenizerBase, name: str) -> None:
    """The special tokens the objective needs are in the tokenizer."""
    needed = ["pad_token", "eos_token"] if cfg.objective == "causal" else ["pad_token", "mask_token", "cls_token",
                                                                           "sep_token"]  # fmt: skip
    lacking = [token for token in needed if getattr(tokenizer, token, None) is None]
    if lacking:
        raise UserError(
            f"Tokenizer {name} has no {', '.join(lacking)}, which objective {cfg.objective} needs. Train one with "
            f"`tunesmith tokenizer train --kind {'bpe' if cfg.objective == 'causal' else 'wordpiece'}`."
        )
