from pathlib import Path

import datasets
import numpy as np
import pytest
import torch

from tunesmith.config import RunConfig
from tunesmith.errors import UserError
from tunesmith.tasks.regression import RegressionTask

SOURCE = Path("train.tsv")


def split(values: list) -> datasets.Dataset:
    return datasets.Dataset.from_dict(
        {"text": [f"t{i}" for i in range(len(values))], "label": values, "line": list(range(2, 2 + len(values)))}
    )


def task(values: list, **options: object) -> RegressionTask:
    made = RegressionTask(RunConfig.model_validate({"data": {"train": "t.tsv"}, "regression": options}))
    made.fit_labels(split(values), SOURCE)
    return made


def test_targets_parse_from_strings_and_numbers() -> None:
    assert task(["1.5", "2", " 3 "]).encode(split(["1.5", "2", " 3 "]), SOURCE)["labels"] == [1.5, 2.0, 3.0]
    assert task([1, 2.5]).encode(split([1, 4]), SOURCE)["labels"] == [1.0, 4.0]


@pytest.mark.parametrize("bad", ["nan", "high", "inf", ""])
def test_non_finite_or_non_numeric_targets_name_the_line(bad: str) -> None:
    with pytest.raises(UserError, match=r"train.tsv, line 3: target .* is not a finite number"):
        task(["1.0", bad])


def test_constant_targets_are_rejected() -> None:
    with pytest.raises(UserError, match="every training target is 2"):
        task(["2", "2.0"], target_scaling="standard")


@pytest.mark.parametrize("scaling", ["standard", "minmax"])
def test_scaling_is_undone_in_metrics_and_state(scaling: str) -> None:
    values = [0.0, 1.0, 2.0, 5.0]
    fitted = task(values, target_scaling=scaling)
    scaled = np.array(fitted.encode(split(values), SOURCE)["labels"])
    if scaling == "standard":
        assert scaled.mean() == pytest.approx(0.0) and scaled.std() == pytest.approx(1.0)
    else:
        assert scaled.min() == 0.0 and scaled.max() == 1.0
    # Perfect predictions in scaled units give zero error in the data's units; an offset of
    # one scaled unit is `scale` data units.
    metrics = fitted.compute_metrics([scaled + 1.0], [scaled])
    assert metrics["mae"] == pytest.approx(fitted.scale) and metrics["pearson"] == pytest.approx(1.0)
    restored = RegressionTask(fitted.cfg, fitted.state())
    assert (restored.shift, restored.scale) == (fitted.shift, fitted.scale)


def test_metrics_match_scipy_definitions() -> None:
    fitted = task([0.0, 5.0])
    predicted, targets = np.array([1.0, 2.0, 2.5, 4.0]), np.array([1.0, 3.0, 2.0, 5.0])
    metrics = fitted.compute_metrics([predicted[:2], predicted[2:]], [targets[:2], targets[2:]])
    assert metrics["mse"] == pytest.approx(np.mean((predicted - targets) ** 2))
    assert metrics["rmse"] == pytest.approx(np.sqrt(metrics["mse"]))
    assert metrics["pearson"] == pytest.approx(np.corrcoef(predicted, targets)[0, 1])
    assert metrics["spearman"] == pytest.approx(0.8)  # ranks 1,2,3,4 vs 1,3,2,4


def test_constant_predictions_give_zero_correlation_not_nan() -> None:
    metrics = task([0.0, 5.0]).compute_metrics([np.array([2.0, 2.0, 2.0])], [np.array([1.0, 2.0, 3.0])])
    assert metrics["pearson"] == 0.0 and metrics["spearman"] == 0.0


def test_huber_loss_is_linear_far_from_the_target() -> None:
    logits, targets = torch.tensor([[0.0], [10.0]]), torch.tensor([0.5, 0.0])
    mse, _ = task([0.0, 1.0]).loss(logits, targets)
    huber, counts = task([0.0, 1.0], loss="huber", huber_delta=1.0).loss(logits, targets)
    assert mse.tolist() == pytest.approx([0.25, 100.0])
    assert huber.tolist() == pytest.approx([0.125, 9.5]) and counts.tolist() == [1.0, 1.0]
