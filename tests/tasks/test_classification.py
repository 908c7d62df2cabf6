from pathlib import Path

import datasets
import numpy as np
import pytest
import torch

from tunesmith.config import RunConfig
from tunesmith.errors import UserError
from tunesmith.tasks.classification import ClassificationTask

SOURCE = Path("train.csv")


def split(labels: list) -> datasets.Dataset:
    return datasets.Dataset.from_dict(
        {"text": [f"t{i}" for i in range(len(labels))], "label": labels, "line": list(range(2, 2 + len(labels)))}
    )


def task(labels: list | None = None, label_names: object = None, **sections: object) -> ClassificationTask:
    cfg = RunConfig.model_validate({"data": {"train": "train.csv", "label_names": label_names}, **sections})
    made = ClassificationTask(cfg)
    if labels is not None:
        made.fit_labels(split(labels), SOURCE)
    return made


def test_integer_labels_sort_numerically() -> None:
    assert task(["10", "2", "1", "2"]).names == ["1", "2", "10"]


def test_string_labels_sort_by_name_and_are_stripped() -> None:
    assert task(["pos ", "neg", "pos"]).names == ["neg", "pos"]


def test_integral_floats_are_integers() -> None:
    assert task([0.0, 1.0]).names == ["0", "1"]


def test_fractional_label_is_rejected_with_its_line() -> None:
    with pytest.raises(UserError, match=r"train.csv, line 3: label 0.5 is a fraction.*regression"):
        task([1.0, 0.5])


def test_single_class_training_set() -> None:
    with pytest.raises(UserError, match="every training row has the label 'a'"):
        task(["a", "a"])


def test_encode_labels_and_unseen_label() -> None:
    fitted = task(["a", "b"])
    assert fitted.encode(split(["b", "a"]), SOURCE)["labels"] == [1, 0]
    with pytest.raises(
        UserError, match=r"dev.tsv, line 3: label 'c' never appears in the training data \(training labels: a, b\)"
    ):
        fitted.encode(split(["a", "c"]), Path("dev.tsv"))


def test_given_label_names_map_integer_ids_and_reject_unknown_ones() -> None:
    fitted = task([0, 1, 1], label_names=["negative", "positive"])
    assert fitted.names == ["negative", "positive"]
    assert fitted.encode(split(["1", "negative", "0"]), SOURCE)["labels"] == [1, 0, 0]
    with pytest.raises(UserError, match=r"train.csv, line 2: label '2' is neither a name in data.label_names"):
        fitted.encode(split([2]), SOURCE)


def test_label_names_from_a_file(tmp_path: Path) -> None:
    names = tmp_path / "labels.txt"
    names.write_text("anger\njoy\nneutral")
    assert task(["2", "joy"], label_names=str(names)).names == ["anger", "joy", "neutral"]
    names.write_text("joy\njoy\n")
    with pytest.raises(UserError, match="data.label_names lists names joy twice"):
        task(["joy"], label_names=str(names))


def test_metrics_match_hand_computed_values() -> None:
    fitted = task(["a", "b", "c"])
    targets = np.array([0, 0, 1, 1, 1, 2])
    predicted = np.array([0, 1, 1, 1, 0, 2])
    # Two batches: metrics are computed over their concatenation.
    metrics = fitted.compute_metrics([predicted[:4], predicted[4:]], [targets[:4], targets[4:]])
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    # per class F1: a: p=1/2 r=1/2 -> .5; b: p=2/3 r=2/3 -> 2/3; c: 1
    assert metrics["f1_macro"] == pytest.approx((0.5 + 2 / 3 + 1) / 3)
    assert metrics["f1_micro"] == pytest.approx(4 / 6)
    assert metrics["f1_weighted"] == pytest.approx((2 * 0.5 + 3 * 2 / 3 + 1 * 1) / 6)
    assert metrics["per_class"]["b"]["support"] == 3
    assert metrics["confusion_matrix"] == [[1, 1, 0], [1, 2, 0], [0, 0, 1]]
    assert -1 <= metrics["mcc"] <= 1 and metrics["mcc"] > 0.4
    assert "f1" not in metrics and "f1" not in fitted.metric_names


def test_binary_f1_is_that_of_the_positive_class() -> None:
    targets = np.array([1, 1, 1, 0, 0])
    predicted = np.array([1, 1, 0, 1, 0])
    # Class "1": tp 2, fp 1, fn 1 -> F1 2/3; class "0": tp 1, fp 1, fn 1 -> 1/2.
    assert task([0, 1]).compute_metrics([predicted], [targets])["f1"] == pytest.approx(2 / 3)
    assert task([0, 1], classification={"positive_label": "0"}).compute_metrics([predicted], [targets])[
        "f1"
    ] == pytest.approx(1 / 2)
    with pytest.raises(UserError, match='positive_label "yes" is not a label'):
        task([0, 1], classification={"positive_label": "yes"}).compute_metrics([predicted], [targets])


def test_loss_is_per_example_cross_entropy() -> None:
    logits = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    sums, counts = task(["a", "b"]).loss(logits, torch.tensor([1, 0]))
    assert sums.shape == (2,) and counts.tolist() == [1.0, 1.0]
    assert sums[0].item() == pytest.approx(np.log(2), rel=1e-5)
    assert sums[1].item() < 1e-3
