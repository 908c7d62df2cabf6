"""What the sequence-level tasks share: one text (or pair) in, one row of logits out.

Classification, regression and multi-label differ in their labels, loss, metrics and in how
a row of logits reads as a result; they tokenize, pad, load and run the model alike, which
lives here once. Each of them sets `head_options()` and `result(row)`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from transformers import AutoModelForSequenceClassification, DataCollatorWithPadding, PreTrainedModel

from tunesmith.config import RunConfig
from tunesmith.models.dropout import dropout_options
from tunesmith.models.loading import load_weights
from tunesmith.tasks.encoding import tokenize
from tunesmith.tasks.protocol import Prepared, ValidationOutputs

if TYPE_CHECKING:
    import datasets


class SequenceTask:
    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg

    def head_options(self) -> dict[str, Any]:
        """The head's settings for from_pretrained: num_labels, problem_type, label names."""
        raise NotImplementedError

    def result(self, logits: list[float]) -> dict[str, Any]:
        """One example's readable prediction from its row of logits."""
        raise NotImplementedError

    def tokenize(self, split: datasets.Dataset, tokenizer: Any, training: bool) -> datasets.Dataset:
        return tokenize(split, tokenizer, self.cfg.training.max_length, self.cfg.training.truncation_side)

    def collator(self, tokenizer: Any) -> DataCollatorWithPadding:
        return DataCollatorWithPadding(tokenizer)

    def check_backbone(self, backbone: str) -> None:
        pass

    def load_model(self, backbone: str) -> PreTrainedModel:
        options = {
            "dtype": torch.float32,
            **self.head_options(),
            **dropout_options(backbone, self.cfg.regularization, self.cfg.model),
        }
        return load_weights(AutoModelForSequenceClassification, backbone, "backbone", **options)

    def load_trained(self, path: Path) -> PreTrainedModel:
        return load_weights(AutoModelForSequenceClassification, path, "run")

    def new_trainable_modules(self) -> list[str]:
        return []

    def check_trainable(self, model: torch.nn.Module, strategy: str) -> None:
        pass

    def after_training(self, validation: Callable[[], ValidationOutputs] | None) -> None:
        pass

    def preprocess(self, tokenizer: Any, texts: list[str], pairs: list[str] | None, batch_size: int) -> Prepared:
        """Batches of similar length, longest first; with `data.average_pair_orders`, each pair
        a second time in the other order, which `decode` averages with the first."""
        orders = [(texts, pairs)]
        if pairs is not None and self.cfg.data.average_pair_orders:
            orders.append((pairs, texts))
        prepared = Prepared(len(texts))
        tokenizer.truncation_side = self.cfg.training.truncation_side
        for first, second in orders:
            order = sorted(range(len(first)), key=lambda i: -len(first[i]) - (len(second[i]) if second else 0))
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                encoded = tokenizer(
                    [first[i] for i in rows],
                    [second[i] for i in rows] if second is not None else None,
                    truncation=True,
                    max_length=self.cfg.training.max_length,
                    padding=True,
                    return_tensors="pt",
                )
                prepared.batches.append(dict(encoded))
                prepared.rows.append(rows)
                prepared.extra.append(None)
        return prepared

    def forward(self, model: PreTrainedModel, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        with torch.no_grad():
            inputs = {name: tensor.to(model.device) for name, tensor in batch.items()}
            return model(**inputs).logits.float().cpu()

    def decode(self, prepared: Prepared, outputs: list[torch.Tensor]) -> list[dict[str, Any]]:
        """Each text's logits (the mean over its occurrences: a pair in both orders) as a result."""
        if not outputs:
            return []
        sums = torch.zeros(prepared.count, outputs[0].shape[-1])
        counts = torch.zeros(prepared.count, 1)
        for rows, logits in zip(prepared.rows, outputs, strict=True):
            index = torch.tensor(rows)
            sums.index_add_(0, index, logits)
            counts.index_add_(0, index, torch.ones(len(rows), 1))
        return [self.result(row) for row in (sums / counts).tolist()]
