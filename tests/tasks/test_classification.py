from pathlib import Path

import datasets
import numpy as np
import pytest
import torch

from tunesmith.errors import UserError
from tunesmith.tasks import classification

SOURCE = Path("train.csv")


def split(labels: list) -> datasets.Dataset:
    return datasets.Dataset.from_dict(
        {"text": [f"t{i}" for i in range(len(labels))], "label": labels, "line": list(range(2, 2 + len(labels)))}
    )


def test_integer_labels_sort_numerically() -> None:
    assert classification.label_names(split(["10", "2", "1", "2"]), SOURCE) == ["1", "2", "10"]


def test_string_labels_sort_by_name_and_are_stripped() -> None:
    assert classification.label_names(split(["pos ", "neg", "pos"]), SOURCE) == ["neg", "pos"]


def test_integral_floats_are_integers() -> None:
    assert classification.label_names(split([0.0, 1.0]), SOURCE) == ["0", "1"]


def test_fractional_label_is_rejected_with_its_line() -> None:
    with pytest.raises(UserError, match=r"train.csv, line 3: label 0.5 is a fraction.*regression"):
        classification.label_names(split([1.0, 0.5]), SOURCE)


def test_single_class_training_set() -> None:
    with pytest.raises(UserError, match="every training row has the label 'a'"):
        classification.label_names(split(["a", "a"]), SOURCE)


def test_encode_labels_and_unseen_label() -> None:
    encoded = classification.encode_labels(split(["b", "a"]), ["a", "b"], SOURCE)
    assert encoded["labels"] == [1, 0]
    with pytest.raises(
        UserError, match=r"dev.tsv, line 3: label 'c' never appears in the training data \(training labels: a, b\)"
    ):
        classification.encode_labels(split(["a", "c"]), ["a", "b"], Path("dev.tsv"))


def test_metrics_match_hand_computed_values() -> None:
    targets = np.array([0, 0, 1, 1, 1, 2])
    predicted = np.array([0, 1, 1, 1, 0, 2])
    metrics = classification.compute_metrics(predicted, targets, ["a", "b", "c"])
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    # per class F1: a: p=1/2 r=1/2 -> .5; b: p=2/3 r=2/3 -> 2/3; c: 1
    assert metrics["f1_macro"] == pytest.approx((0.5 + 2 / 3 + 1) / 3)
    assert metrics["f1_micro"] == pytest.approx(4 / 6)
    assert metrics["f1_weighted"] == pytest.approx((2 * 0.5 + 3 * 2 / 3 + 1 * 1) / 6)
    assert metrics["per_class"]["b"]["support"] == 3
    assert metrics["confusion_matrix"] == [[1, 1, 0], [1, 2, 0], [0, 0, 1]]
    assert -1 <= metrics["mcc"] <= 1 and metrics["mcc"] > 0.4


def test_decode_gives_the_argmax_label_and_normalised_probabilities() -> None:
    decoded = classification.decode(torch.tensor([[0.0, 2.0], [3.0, -1.0]]), ["neg", "pos"])
    assert [row["label"] for row in decoded] == ["pos", "neg"]
    for row in decoded:
        assert sum(row["probabilities"].values()) == pytest.approx(1.0)
        assert row["score"] == max(row["probabilities"].values())


def test_loss_is_per_example_cross_entropy() -> None:
    logits = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    losses = classification.loss(logits, torch.tensor([1, 0]))
    assert losses.shape == (2,)
    assert losses[0].item() == pytest.approx(np.log(2), rel=1e-5)
    assert losses[1].item() < 1e-3
