"""The two self-supervised objectives, as what the training loop (train/loop.py) asks of a task:
a collator, a loss as (sum, count), predictions and metrics. Validation reports the loss per predicted
token (perplexity is its exponential) and the share of tokens predicted right.

- `MaskedLanguageModeling`: transformers' DataCollatorForLanguageModeling chooses `rate` of the
  tokens of each batch afresh (dynamic masking) and applies BERT's 80/10/10 rule; the loss is over the
  chosen tokens only, and the model is told which they are (`predict`) so that its vocabulary
  projection runs on them alone.
- `CausalLanguageModeling`: each token predicts the next; padding is never a target.
"""

from __future__ import annotations

import math
from typing import Any

import datasets
import numpy as np
import torch
from torch.nn import functional as F
from transformers import DataCollatorForLanguageModeling, PreTrainedTokenizerBase

from tunesmith.pretrain.config import MaskingConfig

IGNORE_INDEX = -100


class MaskedLanguageModeling:
    name = "mlm"
    main_metric = "loss"

    def __init__(self, masking: MaskingConfig) -> None:
        self.masking = masking

    def collator(self, tokenizer: PreTrainedTokenizerBase) -> Any:
        """Pads a batch; training batches are masked later, by `transform_batch`, in step order."""
        whole_word = self.masking.whole_word
        self._chooser = DataCollatorForLanguageModeling(
            tokenizer,
            mlm=True,
            mlm_probability=self.masking.rate,
            # transformers replaces every chosen piece of a whole word by [MASK] (it has no random whole words).
            mask_replace_prob=1.0 if whole_word else self.masking.mask_share,
            random_replace_prob=0.0 if whole_word else self.masking.random_share,
            whole_word_mask=whole_word,
        )

        def collate(examples: list[dict[str, Any]]) -> dict[str, Any]:
            if "labels" in examples[0]:  # masked once for all (validation): padded only
                batch = _pad_masked(examples, tokenizer)
                batch["predict"] = batch["labels"] != IGNORE_INDEX
                return batch
            return _pad_for_masking(examples, tokenizer, whole_word)

        return collate

    def transform_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Choose and mask the tokens of a training batch (dynamic masking), from the global generator.

        Called by the loop just before the forward pass, not in the collator: the data loader collates a
        batch ahead, so masks drawn there would come from the generator in another order after a resume.
        """
        device = batch["input_ids"].device
        special = batch.pop("special_tokens_mask").cpu()
        offsets = batch.pop("offset_mapping", None)
        inputs, labels = self._chooser.torch_mask_tokens(
            batch["input_ids"].cpu().clone(), special_tokens_mask=special,
            offset_mapping=None if offsets is None else offsets.cpu(),
        )  # fmt: skip
        batch["input_ids"], batch["labels"] = inputs.to(device), labels.to(device)
        batch["predict"] = batch["labels"] != IGNORE_INDEX
        return batch

    def fixed_masks(
        self, examples: datasets.Dataset, tokenizer: PreTrainedTokenizerBase, seed: int
    ) -> datasets.Dataset:
        """`examples` masked once, from `seed`: every evaluation then scores the same masked tokens (the
        loss curve compares like with like), and the training run's random numbers are left as they were."""
        collate = self.collator(tokenizer)
        masked_ids, labels = [], []
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for start in range(0, len(examples), 256):
                rows = list(examples.select(range(start, min(start + 256, len(examples)))))
                batch = self.transform_batch(collate(rows))
                for row, ids, targets in zip(rows, batch["input_ids"], batch["labels"], strict=True):
                    length = len(row["input_ids"])
                    masked_ids.append(ids[:length].tolist())
                    labels.append(targets[:length].tolist())
        return examples.remove_columns(["input_ids"]).add_column("input_ids", masked_ids).add_column("labels", labels)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`logits` [chosen tokens, vocab], in the row-major order of `labels[labels != -100]`, then rows of
        padding (models/scratch/masked_lm.py), which get no target."""
        targets = _padded_targets(labels, logits.shape[0])
        summed = F.cross_entropy(logits.float(), targets, ignore_index=IGNORE_INDEX, reduction="sum")
        return summed.reshape(1), (targets != IGNORE_INDEX).sum().reshape(1)

    def predictions(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Shaped like `labels` (-100 where nothing was predicted), one row per example as evaluation gathers them."""
        predicted = torch.full_like(labels, IGNORE_INDEX)
        chosen = labels != IGNORE_INDEX
        predicted[chosen] = logits[: int(chosen.sum())].argmax(dim=-1)
        return predicted

    def compute_metrics(self, predicted: list[np.ndarray], targets: list[np.ndarray]) -> dict[str, Any]:
        right = sum(int(((p == t) & (t != IGNORE_INDEX)).sum()) for p, t in zip(predicted, targets, strict=True))
        total = sum(int((t != IGNORE_INDEX).sum()) for t in targets)
        return {"accuracy": right / max(total, 1), "predicted_tokens": total}


class CausalLanguageModeling:
    name = "causal"
    main_metric = "loss"

    def collator(self, tokenizer: PreTrainedTokenizerBase) -> Any:
        pad = DataCollatorForLanguageModeling(tokenizer, mlm=False)

        def collate(examples: list[dict[str, Any]]) -> dict[str, Any]:
            return pad([{"input_ids": example["input_ids"]} for example in examples])

        return collate

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        targets = labels[:, 1:]
        summed = F.cross_entropy(
            logits[:, :-1].flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE_INDEX, reduction="sum"
        )
        return summed.reshape(1), (targets != IGNORE_INDEX).sum().reshape(1)

    def predictions(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return logits[:, :-1].argmax(dim=-1)

    def compute_metrics(self, predicted: list[np.ndarray], targets: list[np.ndarray]) -> dict[str, Any]:
        right = total = 0
        for p, t in zip(predicted, targets, strict=True):
            shifted = t[:, 1 : p.shape[1] + 1]
            kept = shifted != IGNORE_INDEX
            right += int((p[:, : shifted.shape[1]][kept] == shifted[kept]).sum())
            total += int(kept.sum())
        return {"accuracy": right / max(total, 1), "predicted_tokens": total}


def _padded_targets(labels: torch.Tensor, rows: int) -> torch.Tensor:
    targets = labels[labels != IGNORE_INDEX]
    return F.pad(targets, (0, rows - targets.numel()), value=IGNORE_INDEX)


def _pad_masked(examples: list[dict[str, Any]], tokenizer: PreTrainedTokenizerBase) -> dict[str, Any]:
    longest = max(len(example["input_ids"]) for example in examples)
    batch = tokenizer.pad([{"input_ids": example["input_ids"]} for example in examples], return_tensors="pt")
    batch["labels"] = torch.tensor(
        [example["labels"] + [IGNORE_INDEX] * (longest - len(example["labels"])) for example in examples]
    )
    return dict(batch)


def _pad_for_masking(examples: list[dict[str, Any]], tokenizer: PreTrainedTokenizerBase, whole_word: bool) -> dict:
    """Token ids and attention mask padded, with what masking reads: the special tokens (padding counts as one)
    and, for whole words, each token's word as an offset pair (a token starts a new word where its start
    differs from the previous token's end)."""
    longest = max(len(example["input_ids"]) for example in examples)
    rows = [{"input_ids": e["input_ids"], "special_tokens_mask": e["special_tokens_mask"]} for e in examples]
    batch = dict(tokenizer.pad(rows, return_tensors="pt"))
    if whole_word:
        words = [e["word_numbers"] + [-1] * (longest - len(e["word_numbers"])) for e in examples]
        # Padded to the right, as tokenizer.pad pads the ids (checked: a left-padding tokenizer would shift them).
        if tokenizer.padding_side != "right":
            raise ValueError("whole-word masking expects right padding")
        batch["offset_mapping"] = torch.tensor([[(w, w) if w >= 0 else (0, 0) for w in row] for row in words])
    return batch


def perplexity(loss: float) -> float:
    """exp(loss), or inf where that overflows (an untrained model on a large vocabulary)."""
    return math.exp(loss) if loss < 700 else math.inf
