"""R-Drop's divergence against a hand computation and torch's kl_div; its loss against the two passes by hand."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional

from tests.train.test_adversarial import tiny_setup
from tunesmith.config import validate_config
from tunesmith.errors import UserError
from tunesmith.train.rdrop import rdrop_loss, symmetric_bernoulli_kl, symmetric_kl

# P = (1/4, 3/4) from logits (0, ln 3); Q = (1/2, 1/2) from logits (0, 0).
KL_PQ = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
KL_QP = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)


def test_symmetric_kl_by_hand() -> None:
    p, q = torch.tensor([[0.0, math.log(3.0)]]), torch.tensor([[0.0, 0.0]])
    assert symmetric_kl(p, q).item() == pytest.approx((KL_PQ + KL_QP) / 2, rel=1e-6)
    assert symmetric_kl(q, p).item() == pytest.approx((KL_PQ + KL_QP) / 2, rel=1e-6)
    assert symmetric_kl(p, p).item() == 0.0


def test_symmetric_kl_matches_torch_kl_div_per_example() -> None:
    torch.manual_seed(0)
    a, b = torch.randn(5, 4), torch.randn(5, 4)
    log_a, log_b = functional.log_softmax(a, -1), functional.log_softmax(b, -1)
    # kl_div(input=log Q, target=log P, log_target) = KL(P || Q), per element.
    reference = (
        functional.kl_div(log_b, log_a, reduction="none", log_target=True).sum(-1)
        + functional.kl_div(log_a, log_b, reduction="none", log_target=True).sum(-1)
    ) / 2
    assert torch.allclose(symmetric_kl(a, b), reference, atol=1e-6)


def test_bernoulli_kl_by_hand_averages_over_the_labels() -> None:
    # Label 1: Bernoulli 3/4 against 1/2 (the same numbers as above); label 2: equal, so 0.
    a, b = torch.tensor([[math.log(3.0), 1.0]]), torch.tensor([[0.0, 1.0]])
    assert symmetric_bernoulli_kl(a, b).item() == pytest.approx((KL_PQ + KL_QP) / 2 / 2, rel=1e-6)


def test_without_dropout_both_passes_agree_and_the_loss_is_the_task_loss(tiny_model) -> None:
    task, model, batch, labels = tiny_setup(tiny_model)
    sums, counts = rdrop_loss(model, task.loss, 4.0, multilabel=False)(batch, labels)
    plain, plain_counts = task.loss(model(**batch).logits, labels)
    assert torch.allclose(sums, plain, atol=1e-6) and torch.equal(counts, plain_counts)


def test_with_dropout_the_loss_is_the_mean_task_loss_plus_alpha_times_the_divergence(tiny_dropout_model) -> None:
    task, model, batch, labels = tiny_setup(tiny_dropout_model)
    model.train()
    torch.manual_seed(3)
    sums, _ = rdrop_loss(model, task.loss, 2.0, multilabel=False)(batch, labels)
    torch.manual_seed(3)
    logits = model(**{key: torch.cat([value, value]) for key, value in batch.items()}).logits
    first, second = logits[:4], logits[4:]
    divergence = symmetric_kl(first, second)
    expected = (task.loss(first, labels)[0] + task.loss(second, labels)[0]) / 2 + 2.0 * divergence
    assert torch.allclose(sums, expected, atol=1e-6)
    assert bool((divergence > 0).all()), "two dropout passes differ"


def test_rdrop_is_refused_where_there_is_no_class_distribution(tiny_config) -> None:
    with pytest.raises(UserError, match="rdrop.alpha"):
        validate_config({**tiny_config, "task": "regression", "rdrop": {"alpha": 1.0}}, "test")
    assert validate_config({**tiny_config, "task": "regression"}, "test").rdrop.alpha == 0.0


def test_the_loop_compares_bernoulli_distributions_for_a_multilabel_task(tiny_dropout_model) -> None:
    from types import SimpleNamespace

    from tunesmith.tasks import TASKS
    from tunesmith.train import loop

    task, model, batch, labels = tiny_setup(tiny_dropout_model)
    # Two labels per example, as a multi-label task's targets.
    targets = torch.stack([labels, 1 - labels], dim=1).float()

    def multilabel_loss(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        per_example = functional.binary_cross_entropy_with_logits(logits, targets, reduction="none").mean(-1)
        return per_example, torch.ones_like(per_example)

    session = SimpleNamespace(rdrop_alpha=1.0, task=SimpleNamespace(info=TASKS["multilabel"], loss=multilabel_loss))
    session.model = model
    model.train()
    torch.manual_seed(5)
    sums, _ = loop._loss(session, batch, targets)
    torch.manual_seed(5)
    logits = model(**{key: torch.cat([value, value]) for key, value in batch.items()}).logits
    first, second = logits[:4], logits[4:]
    task_part = (multilabel_loss(first, targets)[0] + multilabel_loss(second, targets)[0]) / 2
    assert torch.allclose(sums, task_part + symmetric_bernoulli_kl(first, second), atol=1e-6)
    assert not torch.allclose(sums, task_part + symmetric_kl(first, second), atol=1e-6)
