"""Few-shot contrastive fine-tuning of a sentence encoder: SetFit's recipe, with every pair of a batch.

SetFit (Tunstall et al., 2022) draws pairs of labelled examples, same class (target cosine 1) or not
(target 0), and fine-tunes the encoder with sentence-transformers' CosineSimilarityLoss (the mean
squared error between the pair's cosine and its target); a logistic regression on the tuned embeddings
then classifies. Here each step embeds a batch of distinct examples once and scores all of its pairs
(a batch of 16 holds 120), positives and negatives weighted half and half as SetFit samples them: the
same loss, for a fraction of the encoder passes that one embedding per pair side costs.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from transformers import get_linear_schedule_with_warmup

from tunesmith.fewshot.encoder import SentenceEncoder


@dataclass
class ContrastiveSettings:
    epochs: int = 10
    batch_size: int = 16
    learning_rate: float = 5e-5
    warmup_ratio: float = 0.1
    max_steps: int | None = None
    seed: int = 42


@dataclass
class ContrastiveSummary:
    steps: int = 0
    train_time_s: float = 0.0
    losses: list[float] = field(default_factory=list)
    learning_rates: list[float] = field(default_factory=list)


def pair_loss(embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Weighted squared error between every pair's cosine and 1 (same label) or 0 (not).

    `embeddings` have unit length, so their dot products are the cosines.
    """
    cosines = embeddings @ embeddings.T
    same = (labels[:, None] == labels[None, :]).to(cosines.dtype)
    upper = torch.triu(torch.ones_like(cosines, dtype=torch.bool), diagonal=1)
    errors = (cosines - same)[upper] ** 2
    positive = same[upper].bool()
    # SetFit samples as many negative pairs as positive ones: each kind carries half the loss.
    parts = [errors[kind].mean() for kind in (positive, ~positive) if kind.any()]
    return torch.stack(parts).mean()


def batches(count: int, size: int, generator: np.random.Generator) -> list[np.ndarray]:
    """One epoch: a seeded permutation cut into batches; a last batch of one (no pair) joins the one before."""
    order = generator.permutation(count)
    cut = [order[start : start + size] for start in range(0, count, size)]
    if len(cut) > 1 and len(cut[-1]) < 2:
        last = cut.pop()
        cut[-1] = np.concatenate([cut[-1], last])
    return cut


def planned_steps(count: int, settings: ContrastiveSettings) -> int:
    per_epoch = max(1, math.ceil(count / settings.batch_size))
    if count - (per_epoch - 1) * settings.batch_size < 2 and per_epoch > 1:
        per_epoch -= 1
    steps = per_epoch * settings.epochs
    return min(steps, settings.max_steps) if settings.max_steps else steps


def fit_encoder(
    encoder: SentenceEncoder, texts: list[str], targets: list[int], settings: ContrastiveSettings
) -> ContrastiveSummary:
    """Fine-tune `encoder` in place on the pairs of `texts`; returns the steps, time and losses."""
    if len(texts) < 2:
        raise ValueError("contrastive fine-tuning needs at least two examples")
    torch.manual_seed(settings.seed)
    generator = np.random.default_rng(settings.seed)
    # Tokenized once: each step only gathers and pads its rows.
    encoded = encoder.tokenizer(texts, truncation=True, max_length=encoder.max_length)
    labels = torch.tensor(targets)
    total = planned_steps(len(texts), settings)
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=settings.learning_rate)
    schedule = get_linear_schedule_with_warmup(optimizer, int(settings.warmup_ratio * total), total)
    summary = ContrastiveSummary()
    encoder.train()
    start = time.perf_counter()
    while summary.steps < total:
        for rows in batches(len(texts), settings.batch_size, generator):
            if summary.steps >= total:
                break
            features: list[dict[str, Any]] = [{key: encoded[key][row] for key in encoded} for row in rows]
            batch = encoder.tokenizer.pad(features, return_tensors="pt").data
            loss = pair_loss(encoder(batch), labels[torch.as_tensor(rows)])
            loss.backward()
            summary.learning_rates.append(schedule.get_last_lr()[0])
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            summary.steps += 1
            summary.losses.append(float(loss.detach()))
    encoder.eval()
    summary.train_time_s = time.perf_counter() - start
    return summary
