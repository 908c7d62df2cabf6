"""The loss functions against torch's reductions, torchvision's focal formula and hand computations."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from sklearn.utils.class_weight import compute_class_weight

from tunesmith.errors import UserError
from tunesmith.train import losses

IGNORE = losses.IGNORE


def weighted_mean(pair: tuple[torch.Tensor, torch.Tensor]) -> float:
    sums, counts = pair
    return float(sums.sum() / counts.sum())


def test_focal_matches_a_hand_computation() -> None:
    # p = softmax([0, ln 3]) = [0.25, 0.75]
    logits = torch.tensor([[0.0, math.log(3.0)], [0.0, math.log(3.0)]])
    values, weights = losses.single_label(logits, torch.tensor([1, 0]), focal=True, gamma=2.0)
    assert values.tolist() == pytest.approx([0.25**2 * -math.log(0.75), 0.75**2 * math.log(4.0)], rel=1e-6)
    assert weights.tolist() == [1.0, 1.0]


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_weighted_smoothed_cross_entropy_mean_is_torchs(smoothing: float) -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(12, 3, generator=generator)
    targets = torch.tensor([0, 1, 2, 2, 1, IGNORE, 0, 0, 2, 1, IGNORE, 0])
    weight = torch.tensor([0.5, 2.0, 3.0])
    reference = F.cross_entropy(logits, targets, weight=weight, label_smoothing=smoothing, ignore_index=IGNORE)
    ours = losses.single_label(logits, targets, weight=weight, label_smoothing=smoothing)
    assert weighted_mean(ours) == pytest.approx(float(reference), rel=1e-6)
    # Each element's count is its target's weight; ignored elements count nothing.
    assert ours[1].tolist() == [0.5, 2.0, 3.0, 3.0, 2.0, 0.0, 0.5, 0.5, 3.0, 2.0, 0.0, 0.5]


@pytest.mark.parametrize("weight", [None, torch.tensor([0.5, 2.0, 3.0])])
def test_focal_with_gamma_zero_is_cross_entropy(weight: torch.Tensor | None) -> None:
    logits = torch.randn(10, 3, generator=torch.Generator().manual_seed(1))
    targets = torch.tensor([0, 1, 2, IGNORE, 1, 0, 2, 2, 1, 0])
    focal = losses.single_label(logits, targets, focal=True, gamma=0.0, weight=weight)
    reference = F.cross_entropy(logits, targets, weight=weight, ignore_index=IGNORE)
    assert weighted_mean(focal) == pytest.approx(float(reference), rel=1e-6)


def test_focal_down_weights_easy_examples_more_than_hard_ones() -> None:
    logits = torch.tensor([[0.0, 4.0], [0.0, -1.0]])  # the first is easy (p_t 0.98), the second hard
    ce, _ = losses.single_label(logits, torch.tensor([1, 1]))
    focal, _ = losses.single_label(logits, torch.tensor([1, 1]), focal=True, gamma=2.0)
    ratio = (focal / ce).tolist()
    assert ratio[0] < 0.001 < 0.5 < ratio[1] < 1


def test_focal_gradients_stay_finite_when_certain() -> None:
    # (1 - p_t)^gamma has an infinite slope at p_t = 1 for gamma < 1.
    logits = torch.tensor([[0.0, 200.0]], requires_grad=True)
    values, _ = losses.single_label(logits, torch.tensor([1]), focal=True, gamma=0.5)
    values.sum().backward()
    assert torch.isfinite(logits.grad).all()


def test_sigmoid_focal_matches_a_hand_computation() -> None:
    # Logit 0: p = 0.5, target 1: BCE ln 2, p_t 0.5. Logit ln 3: p = 0.75, target 0: BCE ln 4, p_t 0.25.
    logits, targets = torch.tensor([[0.0, math.log(3.0)]]), torch.tensor([[1.0, 0.0]])
    plain = losses.binary(logits, targets, focal=True, gamma=2.0)
    assert plain.flatten().tolist() == pytest.approx([0.25 * math.log(2), 0.5625 * math.log(4)], rel=1e-6)
    # torchvision's alpha: alpha for positives, 1 - alpha for negatives.
    weighted = losses.binary(logits, targets, focal=True, gamma=2.0, alpha=0.25)
    assert weighted.flatten().tolist() == pytest.approx(
        [0.25 * 0.25 * math.log(2), 0.75 * 0.5625 * math.log(4)], rel=1e-6
    )


def test_sigmoid_focal_with_gamma_zero_is_bce_and_bce_takes_pos_weight() -> None:
    logits = torch.randn(6, 4, generator=torch.Generator().manual_seed(2))
    targets = (torch.rand(6, 4, generator=torch.Generator().manual_seed(3)) > 0.5).float()
    focal = losses.binary(logits, targets, focal=True, gamma=0.0)
    assert focal.mean().item() == pytest.approx(F.binary_cross_entropy_with_logits(logits, targets).item(), rel=1e-6)
    pos_weight = torch.tensor([1.0, 2.0, 3.0, 0.5])
    ours = losses.binary(logits, targets, pos_weight=pos_weight).mean().item()
    reference = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)(logits, targets).item()
    assert ours == pytest.approx(reference, rel=1e-6)


def test_regression_losses_are_torchs() -> None:
    predicted, targets = torch.tensor([0.0, 3.0, -1.0]), torch.tensor([0.5, 0.0, -1.0])
    assert losses.regression(predicted, targets, huber=False).tolist() == [0.25, 9.0, 0.0]
    # Huber with delta 2: 0.5 * 0.5^2 inside, 2 * (3 - 0.5 * 2) outside.
    assert losses.regression(predicted, targets, huber=True, delta=2.0).tolist() == [0.125, 4.0, 0.0]


def test_inverse_class_weights_are_scikit_learns_balanced() -> None:
    # 2,200 rows, 2 classes: 2200 / (2 * 2000) and 2200 / (2 * 200).
    assert losses.class_weights([2000, 200], "inverse") == pytest.approx([0.55, 5.5])
    labels = [0] * 7 + [1] * 2 + [2] * 3
    reference = compute_class_weight("balanced", classes=np.array([0, 1, 2]), y=np.array(labels))
    assert losses.class_weights([7, 2, 3], "inverse") == pytest.approx(reference.tolist())


def test_effective_number_weights_match_the_papers_formula() -> None:
    # (1 - 0.999) / (1 - 0.999^n): 1.15627e-3 for 2,000 and 5.51422e-3 for 200, scaled to sum to 2.
    assert losses.class_weights([2000, 200], "effective", beta=0.999) == pytest.approx([0.346702, 1.653298], rel=1e-5)
    # beta -> 0: every class weighs the same; beta -> 1: the inverse frequency.
    assert losses.class_weights([50, 5], "effective", beta=1e-9) == pytest.approx([1.0, 1.0])
    near_one = losses.class_weights([50, 5], "effective", beta=1 - 1e-9)
    assert near_one[1] / near_one[0] == pytest.approx(10.0, rel=1e-4)


@pytest.mark.parametrize("method", ["inverse", "effective"])
def test_a_class_without_training_examples_takes_the_largest_weight(method: str) -> None:
    weights = losses.class_weights([30, 10, 0], method)
    assert weights[2] == weights[1] > weights[0]


def test_positive_weights_are_negatives_over_positives() -> None:
    assert losses.positive_weights([1, 3, 0], total=4) == [3.0, 1 / 3, 1.0]


def test_loop_weights_scale_the_smallest_to_one() -> None:
    assert losses.loop_weights([0.55, 5.5], torch.device("cpu")).tolist() == pytest.approx([1.0, 10.0])
    assert losses.loop_weights(None, torch.device("cpu")) is None


def test_given_weights_follow_the_label_order() -> None:
    names = ["neg", "neu", "pos"]
    assert losses.resolve_weights({"pos": 2.0}, names, list, "loss.class_weights") == [1.0, 1.0, 2.0]
    assert losses.resolve_weights([1, 2, 3], names, list, "loss.class_weights") == [1.0, 2.0, 3.0]
    assert losses.resolve_weights("none", names, list, "loss.class_weights") is None
    assert losses.resolve_weights("inverse", names, lambda: [4.0, 5.0, 6.0], "loss.class_weights") == [4.0, 5.0, 6.0]
    with pytest.raises(UserError, match=r"loss.class_weights lists 2 weights but there are 3 labels \(neg, neu, pos\)"):
        losses.resolve_weights([1, 2], names, list, "loss.class_weights")
    with pytest.raises(UserError, match="loss.pos_weight names 'joy', not a training label"):
        losses.resolve_weights({"joy": 2.0}, names, list, "loss.pos_weight")


def first_step_gradient(tiny_model: str, batch_size: int, accumulation: int) -> dict[str, torch.Tensor]:
    """The first optimizer step's gradient of a weighted classification loss, 32 examples in all."""
    import tempfile
    from pathlib import Path

    import datasets
    from accelerate.utils import set_seed

    from tunesmith.config import RunConfig
    from tunesmith.models.backbones import load_tokenizer
    from tunesmith.strategies import Strategy, get_strategy
    from tunesmith.tasks import get_task
    from tunesmith.train.accelerator import make_accelerator
    from tunesmith.train.loop import fit

    cfg = RunConfig.model_validate(
        {"model": tiny_model, "data": {"train": "t.csv"}, "loss": {"class_weights": [1.0, 7.0, 3.0]}}
    )
    # Texts of different lengths, so that length-sorted micro-batches hold different mixes of classes.
    rows = {
        "text": [" ".join(["word"] * (1 + i % 9)) + f" {i}" for i in range(32)],
        "label": ["a"] * 20 + ["b"] * 4 + ["c"] * 8,
        "line": list(range(2, 34)),
    }
    task = get_task(cfg)
    split = datasets.Dataset.from_dict(rows)
    task.fit_labels(split, Path("t.csv"))
    tokenizer = load_tokenizer(tiny_model)
    train = task.tokenize(task.encode(split, Path("t.csv")), tokenizer, True)
    training = cfg.training.model_copy(
        update={
            "batch_size": batch_size,
            "gradient_accumulation_steps": accumulation,
            "max_steps": 1,
            "group_by_length": True,
            "max_grad_norm": None,
            "eval_each_epoch": False,
        }
    )
    set_seed(0)
    model = task.load_model(tiny_model)
    seen: dict[str, torch.Tensor] = {}

    def keep_gradient(model: torch.nn.Module, step: int) -> None:
        seen.update({name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None})

    strategy = Strategy("full", get_strategy(cfg).prepare, after_step=keep_gradient)
    accelerator = make_accelerator(accumulation, mixed_precision="no")
    fit(model, train, None, tokenizer, task, training, accelerator, lambda record: None, Path(tempfile.mkdtemp()),
        strategy=strategy)  # fmt: skip
    return seen


def test_accumulated_micro_batches_give_the_weighted_mean_of_the_whole_batch(tiny_model: str) -> None:
    # Each micro-batch's counts are its examples' class weights: the step divides by the weight of all 32.
    whole = first_step_gradient(tiny_model, batch_size=32, accumulation=1)
    accumulated = first_step_gradient(tiny_model, batch_size=8, accumulation=4)
    assert whole.keys() == accumulated.keys() and whole
    difference = sum(float((accumulated[n] - whole[n]).pow(2).sum()) for n in whole)
    size = sum(float(whole[n].pow(2).sum()) for n in whole)
    assert (difference / size) ** 0.5 <= 1e-5


def test_a_mean_of_the_micro_batches_weighted_means_would_have_failed(tiny_model: str, monkeypatch) -> None:
    from tunesmith.train.loop import Session

    whole = first_step_gradient(tiny_model, batch_size=32, accumulation=1)
    monkeypatch.setattr(Session, "accumulates", property(lambda self: False))
    mean_of_means = first_step_gradient(tiny_model, batch_size=8, accumulation=4)
    difference = sum(float((mean_of_means[n] - whole[n]).pow(2).sum()) for n in whole)
    size = sum(float(whole[n].pow(2).sum()) for n in whole)
    assert (difference / size) ** 0.5 > 0.05
