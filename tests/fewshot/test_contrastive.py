"""The pair loss, the batches, and contrastive tuning on the tiny model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tunesmith.fewshot.contrastive import ContrastiveSettings, batches, fit_encoder, pair_loss, planned_steps
from tunesmith.fewshot.encoder import SentenceEncoder


def test_pair_loss_is_zero_when_same_labels_coincide_and_others_are_orthogonal() -> None:
    embeddings = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert pair_loss(embeddings, torch.tensor([0, 0, 1])).item() == pytest.approx(0.0)


def test_pair_loss_weighs_positives_and_negatives_half_and_half() -> None:
    # Pairs (0,1) positive with cosine 0: error 1; (0,2) and (1,2) negative with cosines 1 and 0: errors 1 and 0.
    embeddings = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    loss = pair_loss(embeddings, torch.tensor([0, 0, 1]))
    assert loss.item() == pytest.approx((1.0 + (1.0 + 0.0) / 2) / 2)


def test_batches_cover_every_example_once_and_leave_no_lone_example() -> None:
    cut = batches(33, 16, np.random.default_rng(0))
    assert sorted(np.concatenate(cut).tolist()) == list(range(33))
    assert [len(batch) for batch in cut] == [16, 17]
    assert planned_steps(33, ContrastiveSettings(epochs=3, batch_size=16)) == 6
    assert planned_steps(33, ContrastiveSettings(epochs=3, batch_size=16, max_steps=4)) == 4


TEXTS = ["a great film", "a wonderful film", "a lovely book", "an awful film", "a terrible book", "a boring one"]
TARGETS = [1, 1, 1, 0, 0, 0]


def pair_loss_of(encoder: SentenceEncoder) -> float:
    with torch.no_grad():
        return pair_loss(encoder(encoder.tokenize(TEXTS)), torch.tensor(TARGETS)).item()


def test_tuning_lowers_the_pair_loss_and_repeats_with_the_seed(tiny_model: str) -> None:
    settings = ContrastiveSettings(epochs=20, batch_size=6, learning_rate=1e-3, seed=3)
    first = SentenceEncoder.from_backbone(tiny_model)
    before = pair_loss_of(first)
    summary = fit_encoder(first, TEXTS, TARGETS, settings)
    assert summary.steps == 20 and len(summary.losses) == len(summary.learning_rates) == 20
    assert pair_loss_of(first) < before / 2
    second = SentenceEncoder.from_backbone(tiny_model)
    assert fit_encoder(second, TEXTS, TARGETS, settings).losses == pytest.approx(summary.losses)
