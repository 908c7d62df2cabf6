"""Supervised fine-tuning of a causal (decoder) language model: prompt -> completion, chats, plain text.

The pieces live in tunesmith/causal/; this module fits them to the task protocol. The loss is the
next-token cross-entropy on the tokens that carry labels, summed per row so that the loop normalises
it by the loss tokens of the whole accumulated batch. Prediction is generation.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from transformers import AutoModelForCausalLM, PreTrainedModel

from tunesmith.causal import encoding, generation, packing, templates
from tunesmith.config import RunConfig
from tunesmith.errors import UserError, where
from tunesmith.models.dropout import dropout_options
from tunesmith.models.loading import load_config, load_weights
from tunesmith.tasks import TASKS
from tunesmith.tasks.protocol import Prepared, ValidationOutputs

if TYPE_CHECKING:
    import datasets

logger = logging.getLogger(__name__)

# Architectures (config.json) that generate text left to right.
CAUSAL_SUFFIXES = ("ForCausalLM", "LMHeadModel")
# Columns of an evaluation split that generation reads: the prompt as rendered, and the reference answer.
PROMPT, REFERENCE = "prompt_text", "reference"


class CausalTask:
    info = TASKS["causal"]
    names: list[str] = []
    main_metric = "loss"

    def __init__(self, cfg: RunConfig, state: dict[str, Any] | None = None):
        self.cfg = cfg
        self.options = cfg.causal
        state = state or {}
        self.format: str | None = state.get("format")
        self.stop_token_ids: list[int] = list(state.get("stop_token_ids", []))
        self.added_tokens: list[str] = list(state.get("added_tokens", []))
        self.pad_token_id: int = state.get("pad_token_id", 0)
        self.vocabulary_size: int | None = None
        # The tokenizer `prepare_tokenizer` gave the chat template (None before).
        self.tokenizer: Any = None
        # Examples of each split whose loss tokens truncation cut away entirely (left out of training).
        self.cut_away: dict[str, int] = {}

    @property
    def metric_names(self) -> list[str]:
        # What training's evaluations measure; exact match and ROUGE-L come from generating, once at the end.
        return ["loss", "perplexity"]

    # --- labels: none to learn; what the rows are is remembered ---
    def fit_labels(self, train: datasets.Dataset, source: Path) -> None:
        columns = set(train.column_names)
        self.format = "messages" if "messages" in columns else "prompt_completion" if "prompt" in columns else "text"

    def state(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "stop_token_ids": self.stop_token_ids,
            "added_tokens": self.added_tokens,
            "pad_token_id": self.pad_token_id,
        }

    def encode(self, split: datasets.Dataset, source: Path) -> datasets.Dataset:
        """The rows as they are; chats are rendered once here, so that one the template cannot render is
        refused by its line before the run folder exists."""
        if self.format == "messages" and self.tokenizer is not None:
            for messages, line in zip(split["messages"], split["line"], strict=True):
                try:
                    templates.assistant_spans(self.tokenizer, messages)
                except UserError as exc:
                    raise UserError(f"{where(source, line)}: {exc}") from None
        return split

    # --- data ---
    def prepare_tokenizer(self, tokenizer: Any) -> None:
        """The chat template on the tokenizer, its new marker tokens and a pad token; once per tokenizer."""
        if getattr(tokenizer, "_tunesmith_prepared", False):
            return
        added = templates.set_template(tokenizer, self.options.chat_template, needed=self.format == "messages")
        self.added_tokens = self.added_tokens or added
        if tokenizer.pad_token is None:
            # Padding carries no labels (they come from character spans), so EOS can pad without being masked.
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"  # generation continues the prompts where they end
        self.stop_token_ids = templates.end_of_turn_ids(tokenizer, self.options.chat_template)
        self.pad_token_id = pad_id(tokenizer)
        self.tokenizer = tokenizer
        self.vocabulary_size = len(tokenizer)
        tokenizer._tunesmith_prepared = True

    def tokenize(self, split: datasets.Dataset, tokenizer: Any, training: bool) -> datasets.Dataset:
        self.prepare_tokenizer(tokenizer)
        max_length, train_on_prompt = self.cfg.training.max_length, self.options.train_on_prompt

        def encode_rows(rows: dict[str, list]) -> dict[str, list]:
            out: dict[str, list] = {"input_ids": [], "labels": [], "length": [], "truncated": [], "cut_away": []}
            if not training:
                out[PROMPT], out[REFERENCE] = [], []
            for index in range(len(rows["line"])):
                row = {name: values[index] for name, values in rows.items()}
                encoded = encoding.encode(tokenizer, row, max_length, train_on_prompt)
                out["input_ids"].append(encoded.input_ids)
                out["labels"].append(encoded.labels)
                out["length"].append(len(encoded.input_ids))
                out["truncated"].append(int(len(encoded.input_ids) >= max_length))
                out["cut_away"].append(encoded.cut_away)
                if not training:
                    prompt, reference = generation.prompt_and_reference(tokenizer, row)
                    out[PROMPT].append(prompt)
                    out[REFERENCE].append(reference)
            return out

        encoded = split.map(encode_rows, batched=True, desc="Tokenizing")
        cut = sum(encoded["cut_away"])
        if cut:
            lines = [line for line, away in zip(encoded["line"], encoded["cut_away"], strict=True) if away][:5]
            logger.warning(
                "%d examples (lines %s%s) lose every token they would learn to truncation at training.max_length "
                "%d: left out of %s. Raise training.max_length or shorten their prompts.",
                cut, ", ".join(map(str, lines)), ", ..." if cut > len(lines) else "", max_length,
                "training" if training else "the loss",
            )  # fmt: skip
            encoded = encoded.filter(lambda row: not row["cut_away"])
        self.cut_away["train" if training else "evaluation"] = cut
        if len(encoded) == 0:
            raise UserError(f"No example has a token left to learn within training.max_length {max_length}. Raise it.")
        if training and self.options.packing:
            return packing.pack(encoded, max_length)
        return encoded

    def collator(self, tokenizer: Any) -> Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]]:
        return packing.collator(pad_id(tokenizer))

    # --- model ---
    def check_backbone(self, backbone: str) -> None:
        if self.options.load_in_4bit:
            check_four_bit_loading()
        architectures = getattr(load_config(backbone, "backbone"), "architectures", None) or []
        if not any(name.endswith(CAUSAL_SUFFIXES) for name in architectures):
            shown = ", ".join(architectures) or "none named"
            raise UserError(
                f"Model {self.cfg.model} is not a causal (text-generating) language model (architectures: {shown}), "
                "so task causal cannot fine-tune it. Name a decoder such as gpt2, Qwen or Llama, or a model "
                "from `tunesmith pretrain` with objective causal."
            )

    def load_model(self, backbone: str) -> PreTrainedModel:
        dropout = dropout_options(backbone, self.cfg.regularization, self.cfg.model)
        if self.options.load_in_4bit:
            model = load_four_bit(backbone, dropout)
        else:
            model = load_weights(AutoModelForCausalLM, backbone, "backbone", dtype=torch.float32, **dropout)
        if self.vocabulary_size and self.vocabulary_size > model.get_input_embeddings().num_embeddings:
            model.resize_token_embeddings(self.vocabulary_size, mean_resizing=True)
        # Without a cache the model reads packed rows' position ids as separate examples (masking_utils).
        model.config.use_cache = False
        return model

    def load_trained(self, path: Path) -> PreTrainedModel:
        return load_weights(AutoModelForCausalLM, path, "run")

    def new_trainable_modules(self) -> list[str]:
        return []

    def check_trainable(self, model: torch.nn.Module, strategy: str) -> None:
        embeddings = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
        if self.added_tokens and embeddings is not None and not embeddings.weight.requires_grad:
            logger.warning(
                "The chat template's tokens %s are new to the vocabulary, but strategy %s leaves the embeddings "
                "frozen: they keep their initial rows. Use strategy full, or a model whose tokenizer has a template.",
                ", ".join(self.added_tokens), strategy,
            )  # fmt: skip

    # --- training and scoring ---
    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-row sums of next-token losses over the tokens with targets, and their counts."""
        # Prompt tuning and P-tuning put their virtual tokens before the input: their outputs come first.
        logits = logits[:, -targets.shape[1] :]
        per_token = torch.nn.functional.cross_entropy(
            logits.float().transpose(1, 2), targets, ignore_index=packing.IGNORE, reduction="none"
        )
        mask = targets != packing.IGNORE
        return (per_token * mask).sum(dim=1), mask.sum(dim=1)

    def predictions(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        sums, counts = self.loss(logits, targets)
        return torch.stack([sums, counts.float()], dim=1)

    def compute_metrics(self, predicted: list[np.ndarray], targets: list[np.ndarray]) -> dict[str, Any]:
        """Loss per target token and its perplexity."""
        totals = np.concatenate(predicted).sum(axis=0) if predicted else np.zeros(2)
        loss = float(totals[0] / max(totals[1], 1.0))
        return {"loss": loss, "perplexity": math.exp(min(loss, 50.0)), "target_tokens": int(totals[1])}

    def example_outputs(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.predictions(logits, targets)

    def example_records(self, outputs: np.ndarray, targets: np.ndarray) -> list[dict[str, Any]]:
        """Each example's loss per target token (predictions.jsonl); its generation is scored apart."""
        return [{"loss": float(total / max(count, 1.0)), "target_tokens": int(count)} for total, count in outputs]

    def after_training(self, validation: Callable[[], ValidationOutputs] | None) -> None:
        pass

    def generation_scores(self, model: PreTrainedModel, tokenizer: Any, split: datasets.Dataset) -> dict[str, Any]:
        """Exact match and ROUGE-L of greedy generations against the references, on up to
        causal.evaluation_generations examples; with a few samples for the report."""
        return generation.score_split(
            model, tokenizer, split, self.options, self.stop_token_ids, PROMPT, REFERENCE, self.format == "messages"
        )

    # --- prediction: generation ---
    @property
    def chat(self) -> bool:
        """Prompts are user turns rendered by the chat template (runs trained on chats)."""
        return self.format == "messages"

    def preprocess(self, tokenizer: Any, texts: list[str], pairs: list[str] | None, batch_size: int) -> Prepared:
        """Prompts as in training, tokenized in batches, padded on the left for generation to continue them."""
        prepared = Prepared(len(texts))
        tokenizer.padding_side = "left"
        prompts = [generation.as_prompt(tokenizer, text, self.chat) for text in texts]
        for start in range(0, len(texts), batch_size):
            rows = list(range(start, min(start + batch_size, len(texts))))
            batch = tokenizer(
                [prompts[i] for i in rows], return_tensors="pt", padding=True, add_special_tokens=not self.chat
            )
            prepared.batches.append(dict(batch))
            prepared.rows.append(rows)
            prepared.extra.append(tokenizer)
        return prepared

    def forward(self, model: PreTrainedModel, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The new tokens of a greedy generation (causal.max_new_tokens at most), on the CPU."""
        settings = generation.GenerationSettings(max_new_tokens=self.options.max_new_tokens)
        return generation.new_tokens(model, batch, settings, self.stop_token_ids, self.pad_token_id)

    def decode(self, prepared: Prepared, outputs: list[torch.Tensor]) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = [{} for _ in range(prepared.count)]
        for rows, tokens, tokenizer in zip(prepared.rows, outputs, prepared.extra, strict=True):
            for row, text in zip(rows, tokenizer.batch_decode(tokens, skip_special_tokens=True), strict=True):
                results[row] = {"generated_text": text}
        return results


def pad_id(tokenizer: Any) -> int:
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return candidate
    return 0


def check_four_bit_loading() -> None:
    """QLoRA's 4-bit weights need bitsandbytes and a CUDA GPU: refused before anything is written otherwise."""
    import importlib.util

    if not torch.cuda.is_available():
        raise UserError(
            "causal.load_in_4bit (QLoRA) needs a CUDA GPU (bitsandbytes' 4-bit kernels), and none is visible. "
            "Train without it (LoRA on the full-precision weights), or on a machine with a GPU."
        )
    if importlib.util.find_spec("bitsandbytes") is None:
        raise UserError("causal.load_in_4bit (QLoRA) needs the bitsandbytes package: pip install bitsandbytes.")


def load_four_bit(backbone: str, dropout: dict[str, float]) -> PreTrainedModel:
    """The decoder in 4-bit NF4 with double quantisation and bfloat16 compute (QLoRA's recipe), its norms and
    head kept in float32 for training (peft's `prepare_model_for_kbit_training`)."""
    from peft import prepare_model_for_kbit_training
    from transformers import BitsAndBytesConfig

    quantization = BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )  # fmt: skip
    model = load_weights(
        AutoModelForCausalLM, backbone, "backbone", quantization_config=quantization, dtype=torch.bfloat16, **dropout
    )
    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
