"""Prompt-based fine-tuning through a masked-LM head (PET, Schick & Schütze 2021; LM-BFF, Gao et al. 2021).

A text becomes a cloze: `cloze.template` with the text in place of {text} and the tokenizer's mask
token in place of {mask} ("{text} It was {mask}."). A verbaliser maps each label to one word of the
vocabulary ("great", "terrible"); a label's logit is the masked-LM head's logit for its word at the
mask. Training is cross-entropy over those logits, through the pretrained head: no new weights, which
is why it learns from a handful of examples. It needs a model whose masked-LM head was trained (a hub
BERT, or one from `tunesmith pretrain`); the bundled MiniLM has none and is refused.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForMaskedLM, PreTrainedModel, PreTrainedTokenizerBase, get_linear_schedule_with_warmup

from tunesmith.errors import UserError
from tunesmith.models import loading
from tunesmith.models.backbones import check_loadable


@dataclass
class ClozeSummary:
    steps: int = 0
    train_time_s: float = 0.0
    losses: list[float] = field(default_factory=list)
    learning_rates: list[float] = field(default_factory=list)


def verbaliser_ids(tokenizer: PreTrainedTokenizerBase, names: list[str], words: dict[str, str]) -> list[int]:
    """One vocabulary id per label, in label order: each label's word must be one token."""
    missing = [name for name in names if name not in words]
    if missing:
        raise UserError(
            f"cloze.verbalizer has no word for {', '.join(map(repr, missing))} (labels: {', '.join(names)}). "
            'Give every label one word, e.g. {"1": great, "0": terrible}.'
        )
    ids = []
    for name in names:
        pieces = tokenizer.tokenize(words[name])
        if len(pieces) != 1:
            raise UserError(
                f"cloze.verbalizer: the word {words[name]!r} of label {name!r} is {len(pieces)} tokens to the "
                f"model's tokenizer ({pieces}); the mask predicts one. Choose a word the vocabulary holds whole."
            )
        ids.append(tokenizer.convert_tokens_to_ids(pieces[0]))
    if len(set(ids)) < len(ids):
        raise UserError("cloze.verbalizer maps two labels to the same word: give each label its own.")
    return ids


class ClozeClassifier(torch.nn.Module):
    def __init__(
        self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, template: str, ids: list[int], max_length: int
    ):
        super().__init__()
        self.model, self.tokenizer, self.template, self.max_length = model, tokenizer, template, max_length
        self.register_buffer("ids", torch.tensor(ids), persistent=False)

    @classmethod
    def from_backbone(
        cls, name: str, template: str, words: dict[str, str], names: list[str], max_length: int
    ) -> ClozeClassifier:
        resolved = check_loadable(name)
        missing: set[str] = set()
        model = loading.load_weights(AutoModelForMaskedLM, resolved, "backbone", missing=missing)
        prefix = model.base_model_prefix + "."
        head = sorted(key for key in missing if not key.startswith(prefix))
        if head:
            raise UserError(
                f"Model {name!r} has no trained masked-LM head ({', '.join(head[:3])} missing): method cloze predicts "
                "the label word through that head. Use a BERT-style model saved with its masked-LM head (a hub model "
                "such as bert-base-uncased, or a folder written by `tunesmith pretrain`)."
            )
        tokenizer = loading.load_tokenizer(resolved, "backbone")
        return cls(model, tokenizer, template, verbaliser_ids(tokenizer, names, words), max_length)

    @classmethod
    def from_folder(
        cls, folder: Path, template: str, words: dict[str, str], names: list[str], max_length: int
    ) -> ClozeClassifier:
        model = loading.load_weights(AutoModelForMaskedLM, folder, "run")
        tokenizer = loading.load_tokenizer(folder, "run")
        return cls(model, tokenizer, template, verbaliser_ids(tokenizer, names, words), max_length)

    def save(self, folder: Path) -> None:
        self.model.save_pretrained(folder, safe_serialization=True)
        self.tokenizer.save_pretrained(folder)

    def encode(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """Each text as its cloze, the text cut (never the mask) to fit max_length."""
        before, _, after = self.template.partition("{mask}")
        rows = []
        for text in texts:
            left = self.tokenizer.encode(before.replace("{text}", text).strip(), add_special_tokens=False)
            right = self.tokenizer.encode(after.replace("{text}", text).strip(), add_special_tokens=False)
            budget = self.max_length - 3
            if len(left) + len(right) > budget:
                # The side holding the text is the long one: cut it, from its end on the left, its start on the right.
                if len(left) >= len(right):
                    left = left[: max(0, budget - len(right))]
                else:
                    right = right[len(right) - max(0, budget - len(left)) :]
            ids = [
                self.tokenizer.cls_token_id,
                *left,
                self.tokenizer.mask_token_id,
                *right,
                self.tokenizer.sep_token_id,
            ]
            rows.append({"input_ids": ids})
        return self.tokenizer.pad(rows, return_tensors="pt").data

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(texts, labels) logits: the masked-LM head's logits of the label words at the mask."""
        device = self.ids.device
        batch = {key: value.to(device) for key, value in batch.items()}
        masks = batch["input_ids"] == self.tokenizer.mask_token_id
        # BERT's head is `cls`, RoBERTa's `lm_head`: applied at the masks alone, the vocabulary-wide
        # projection costs one row per text instead of one per token.
        head = getattr(self.model, "cls", None) or getattr(self.model, "lm_head", None)
        if head is None:
            return self.model(**batch).logits[masks][:, self.ids]
        hidden = self.model.base_model(**batch).last_hidden_state
        return head(hidden[masks])[:, self.ids]

    @torch.inference_mode()
    def probabilities(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        self.eval()
        out = [
            torch.softmax(self(self.encode(texts[i : i + batch_size])).float(), dim=-1)
            for i in range(0, len(texts), batch_size)
        ]
        return torch.cat(out).cpu().numpy() if out else np.zeros((0, len(self.ids)))


def fit_cloze(
    classifier: ClozeClassifier,
    texts: list[str],
    targets: list[int],
    epochs: int,
    batch_size: int,
    learning_rate: float,
    warmup_ratio: float,
    seed: int,
) -> ClozeSummary:
    torch.manual_seed(seed)
    generator = np.random.default_rng(seed)
    per_epoch = -(-len(texts) // batch_size)
    total = per_epoch * epochs
    optimizer = torch.optim.AdamW(classifier.parameters(), lr=learning_rate)
    schedule = get_linear_schedule_with_warmup(optimizer, int(warmup_ratio * total), total)
    labels = torch.tensor(targets)
    summary = ClozeSummary()
    classifier.train()
    start = time.perf_counter()
    for _ in range(epochs):
        order = generator.permutation(len(texts))
        for begin in range(0, len(texts), batch_size):
            rows = order[begin : begin + batch_size]
            logits = classifier(classifier.encode([texts[row] for row in rows]))
            loss = torch.nn.functional.cross_entropy(logits.float(), labels[torch.as_tensor(rows)])
            loss.backward()
            summary.learning_rates.append(schedule.get_last_lr()[0])
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            summary.steps += 1
            summary.losses.append(float(loss.detach()))
    classifier.eval()
    summary.train_time_s = time.perf_counter() - start
    return summary
