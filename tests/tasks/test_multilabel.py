from pathlib import Path

import datasets
import numpy as np
import pytest
import torch

from tunesmith.config import RunConfig
from tunesmith.errors import UserError
from tunesmith.tasks.multilabel import MultiLabelTask

SOURCE = Path("train.tsv")


def split(values: list) -> datasets.Dataset:
    return datasets.Dataset.from_dict(
        {"text": [f"t{i}" for i in range(len(values))], "label": values, "line": list(range(1, 1 + len(values)))}
    )


def task(values: list, label_names: object = None, **options: object) -> MultiLabelTask:
    cfg = RunConfig.model_validate({"data": {"train": "t.tsv", "label_names": label_names}, "multilabel": options})
    made = MultiLabelTask(cfg)
    made.fit_labels(split(values), SOURCE)
    return made


def test_comma_joined_and_list_labels_become_multi_hot_rows() -> None:
    fitted = task(["joy, anger", "anger", "surprise"])
    assert fitted.names == ["anger", "joy", "surprise"]
    assert fitted.encode(split(["joy,anger", "surprise"]), SOURCE)["labels"] == [[1, 1, 0], [0, 0, 1]]
    assert fitted.encode(split([["surprise", "joy"]]), SOURCE)["labels"] == [[0, 1, 1]]


def test_ids_index_into_the_given_names_and_unknown_labels_name_the_line() -> None:
    fitted = task(["0,2", "1"], label_names=["anger", "joy", "neutral"])
    assert fitted.encode(split(["2", "0,1"]), SOURCE)["labels"] == [[0, 0, 1], [1, 1, 0]]
    with pytest.raises(UserError, match=r"dev.tsv, line 2: label '7' is neither a name in data.label_names"):
        fitted.encode(split(["1", "1,7"]), Path("dev.tsv"))
    unnamed = task(["joy", "anger"])
    with pytest.raises(UserError, match=r"train.tsv, line 1: label 'fear' never appears in the training data"):
        unnamed.encode(split(["joy,fear"]), SOURCE)


def test_empty_entries_are_rejected() -> None:
    with pytest.raises(UserError, match=r"train.tsv, line 2: an empty label in 'joy,'"):
        task(["anger", "joy,"])


def test_other_separator() -> None:
    assert task(["a|b", "c"], separator="|").names == ["a", "b", "c"]


def test_metrics_against_hand_counts() -> None:
    fitted = task(["a", "b", "c"])
    probabilities = np.array([[0.9, 0.6, 0.1], [0.2, 0.4, 0.7], [0.8, 0.1, 0.1]])
    targets = np.array([[1, 1, 0], [0, 1, 1], [1, 0, 0]])
    metrics = fitted.compute_metrics([probabilities[:1], probabilities[1:]], [targets[:1], targets[1:]])
    # Decisions at 0.5: rows [1,1,0], [0,0,1], [1,0,0]: one miss (row 2, label b).
    assert metrics["subset_accuracy"] == pytest.approx(2 / 3)
    assert metrics["hamming_loss"] == pytest.approx(1 / 9)
    assert metrics["f1_micro"] == pytest.approx(2 * 4 / (2 * 4 + 0 + 1))
    assert metrics["per_class"]["b"]["recall"] == pytest.approx(0.5)
    assert metrics["f1_macro"] == pytest.approx((1 + 2 / 3 + 1) / 3)


def test_tuned_thresholds_maximise_each_labels_f1() -> None:
    fitted = task(["a", "b"])
    # Label a is separable at 0.3; label b's positives sit above 0.8 with a negative at 0.6.
    probabilities = np.array([[0.35, 0.85], [0.32, 0.6], [0.1, 0.9], [0.2, 0.1]])
    targets = np.array([[1, 1], [1, 0], [0, 1], [0, 0]])
    before = fitted.compute_metrics([probabilities], [targets])["f1_macro"]
    fitted.tune_thresholds([probabilities], [targets])
    assert fitted.thresholds[0] == pytest.approx(0.25) or 0.2 < fitted.thresholds[0] <= 0.3
    assert 0.6 < fitted.thresholds[1] <= 0.85
    after = fitted.compute_metrics([probabilities], [targets])
    assert after["f1_macro"] == 1.0 > before
    assert MultiLabelTask(fitted.cfg, fitted.state()).thresholds == fitted.thresholds


def test_loss_is_mean_binary_cross_entropy_per_example() -> None:
    fitted = task(["a", "b"])
    sums, counts = fitted.loss(torch.zeros(2, 2), torch.tensor([[1.0, 0.0], [1.0, 1.0]]))
    assert sums.tolist() == pytest.approx([np.log(2)] * 2) and counts.tolist() == [1.0, 1.0]
