"""The Fisher diagonal against a hand computation on a one-layer model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.continual.tiny import CrossEntropy, Linear
from tunesmith.continual.ewc import fisher_diagonal


def test_fisher_diagonal_by_hand():
    model = Linear()
    examples = [
        {"features": torch.tensor([[1.0, 2.0]]), "labels": torch.tensor([0])},
        {"features": torch.tensor([[2.0, 0.0]]), "labels": torch.tensor([1])},
    ]
    (fisher,) = fisher_diagonal(model, examples, CrossEntropy(), [model.weight])
    # W = 0: both classes at 0.5, so d CE / d W = (p - onehot) x^T.
    # Example 1: [-0.5, 0.5]^T [1, 2] -> squared [[0.25, 1], [0.25, 1]].
    # Example 2: [0.5, -0.5]^T [2, 0] -> squared [[1, 0], [1, 0]].
    assert fisher.tolist() == [[pytest.approx(0.625), pytest.approx(0.5)], [pytest.approx(0.625), pytest.approx(0.5)]]
    assert model.weight.grad is None and model.training


def test_fisher_diagonal_is_the_mean_of_squared_per_example_gradients_not_of_the_batch():
    torch.manual_seed(0)
    model = Linear()
    with torch.no_grad():
        model.weight.normal_()
    features, labels = torch.randn(5, 2), torch.tensor([0, 1, 1, 0, 1])
    examples = [{"features": features[i : i + 1], "labels": labels[i : i + 1]} for i in range(5)]
    (fisher,) = fisher_diagonal(model, examples, CrossEntropy(), [model.weight])
    expected = torch.zeros(2, 2)
    for i in range(5):
        loss = nn.functional.cross_entropy(features[i : i + 1] @ model.weight.T, labels[i : i + 1])
        (gradient,) = torch.autograd.grad(loss, model.weight)
        expected += gradient**2 / 5
    torch.testing.assert_close(fisher, expected)
    batch_mean = nn.functional.cross_entropy(features @ model.weight.T, labels)
    (batch_gradient,) = torch.autograd.grad(batch_mean, model.weight)
    assert not torch.allclose(fisher, batch_gradient**2)


def test_fisher_needs_examples():
    model = Linear()
    with pytest.raises(ValueError, match="at least one example"):
        fisher_diagonal(model, [], CrossEntropy(), [model.weight])


def test_a_frozen_parameter_gets_its_fisher_and_stays_frozen():
    """A strategy that unfreezes layers later (gradual) leaves them frozen when the Fisher is estimated."""
    model = Linear()
    examples = [{"features": torch.tensor([[1.0, 2.0]]), "labels": torch.tensor([0])}]
    (trainable,) = fisher_diagonal(model, examples, CrossEntropy(), [model.weight])
    model.weight.requires_grad_(False)
    (frozen,) = fisher_diagonal(model, examples, CrossEntropy(), [model.weight])
    torch.testing.assert_close(frozen, trainable)
    assert frozen.abs().sum() > 0 and not model.weight.requires_grad
