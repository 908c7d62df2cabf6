"""A sentence encoder: a transformers encoder with mean pooling and L2 normalisation.

The pooling is sentence-transformers' for all-MiniLM-L6-v2 (its modules.json: Transformer, mean
Pooling over the attention mask, Normalize), so that the bundled model embeds here as it does there,
without sentence-transformers on the path of a prediction.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from transformers import AutoModel, PreTrainedModel, PreTrainedTokenizerBase

from tunesmith.models import loading
from tunesmith.models.backbones import check_loadable


class SentenceEncoder(torch.nn.Module):
    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, max_length: int = 256):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length

    @classmethod
    def from_backbone(cls, name: str, max_length: int = 256) -> SentenceEncoder:
        """`name` as every command takes it: "minilm" (bundled), a folder, or a hub id."""
        resolved = check_loadable(name)
        model = loading.load_weights(AutoModel, resolved, "backbone", add_pooling_layer=False)
        return cls(model, loading.load_tokenizer(resolved, "backbone"), max_length)

    @classmethod
    def from_folder(cls, folder: Path, max_length: int = 256) -> SentenceEncoder:
        """A run's encoder/ folder, written by `save`: every weight must be there."""
        model = loading.load_weights(AutoModel, folder, "run", add_pooling_layer=False)
        return cls(model, loading.load_tokenizer(folder, "run"), max_length)

    def save(self, folder: Path) -> None:
        self.model.save_pretrained(folder, safe_serialization=True)
        self.tokenizer.save_pretrained(folder)

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        return self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        ).data

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Unit-length sentence embeddings of a tokenized batch (with gradients when training)."""
        device = next(self.model.parameters()).device
        batch = {key: value.to(device) for key, value in batch.items()}
        hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        # Mean over real tokens only: padding must not dilute a short text's embedding.
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1)

    @torch.inference_mode()
    def embed(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Embeddings of `texts`, in their order, as float32 rows of unit length."""
        was_training = self.training
        self.eval()
        # Longest first, so that each batch pads to texts of about its own length.
        order = sorted(range(len(texts)), key=lambda index: -len(texts[index]))
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            out[rows] = self.forward(self.tokenize([texts[row] for row in rows])).float().cpu().numpy()
        self.train(was_training)
        return out

    @property
    def dimension(self) -> int:
        return int(self.model.config.hidden_size)
