"""L2-SP and EWC: the gradient added to a step is the penalty's, by hand and by autograd."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tunesmith.continual.pull import Pull, encoder_parameters, pull_toward_current


def test_l2sp_gradient_and_penalty_by_hand():
    weight = nn.Parameter(torch.tensor([1.0, 2.0]))
    pull = Pull(0.5, [weight], [torch.tensor([0.0, 0.0])])
    # (0.5 / 2) * (1 + 4)
    assert pull.penalty().item() == pytest.approx(1.25)
    weight.grad = torch.tensor([10.0, 20.0])
    pull.add_gradient()
    # The data gradient plus 0.5 * (w - 0).
    assert weight.grad.tolist() == pytest.approx([10.5, 21.0])
    # Gradients held scaled (fp16's loss scale) get the term scaled alike.
    pull.add_gradient(scale=4.0)
    assert weight.grad.tolist() == pytest.approx([12.5, 25.0])


def test_ewc_gradient_and_penalty_by_hand():
    weight = nn.Parameter(torch.tensor([1.0, 2.0]))
    pull = Pull(0.5, [weight], [torch.tensor([0.0, 1.0])], weights=[torch.tensor([2.0, 3.0])])
    # (0.5 / 2) * (2 * 1 + 3 * 1)
    assert pull.penalty().item() == pytest.approx(1.25)
    pull.add_gradient()  # no gradient yet: the penalty's alone
    assert weight.grad.tolist() == pytest.approx([1.0, 1.5])


@pytest.mark.parametrize("weighted", [False, True])
def test_the_added_gradient_is_the_penalty_gradient_by_autograd(weighted: bool):
    torch.manual_seed(0)
    layer = nn.Linear(4, 3)
    parameters = list(layer.parameters())
    anchors = [p.detach() + torch.randn_like(p) for p in parameters]
    weights = [torch.rand_like(p) for p in parameters] if weighted else None
    pull = Pull(0.7, parameters, anchors, weights)
    expected = torch.autograd.grad(pull.penalty(), parameters)
    pull.add_gradient()
    for parameter, gradient in zip(parameters, expected, strict=True):
        torch.testing.assert_close(parameter.grad, gradient)


def test_a_frozen_parameter_gets_no_gradient_and_the_anchor_is_a_copy():
    weight = nn.Parameter(torch.tensor([1.0]), requires_grad=False)
    moving = nn.Parameter(torch.tensor([3.0]))
    pull = pull_toward_current(2.0, [weight, moving])
    with torch.no_grad():
        moving.add_(1.0)  # the anchor stays at 3
    pull.add_gradient()
    assert weight.grad is None
    assert moving.grad.tolist() == [2.0]


def test_encoder_parameters_leave_out_the_head_and_optionally_the_pooler(tiny_model: str):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=3)
    names = {id(p): name for name, p in model.named_parameters()}
    without = [names[id(p)] for p in encoder_parameters(model, include_pooler=False)]
    with_pooler = [names[id(p)] for p in encoder_parameters(model, include_pooler=True)]
    assert without and all(name.startswith("bert.") and "pooler" not in name for name in without)
    assert set(with_pooler) - set(without) == {"bert.pooler.dense.weight", "bert.pooler.dense.bias"}
    assert not any(name.startswith("classifier") for name in with_pooler)
