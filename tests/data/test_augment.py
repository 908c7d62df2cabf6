import csv
from pathlib import Path

import datasets
import pytest
import torch

import tunesmith
from tunesmith.config import validate_config
from tunesmith.data.augment import swap_pairs, swapped
from tunesmith.errors import UserError


def test_swapped_copies_follow_the_pairs_with_label_and_line_kept() -> None:
    train = datasets.Dataset.from_dict(
        {"text": ["a cat", "a dog"], "text_pair": ["one cat", "two dogs"], "labels": [1, 0], "line": [2, 3]}
    )
    doubled = swap_pairs(train)
    assert doubled.column_names == train.column_names
    assert doubled.features == train.features
    assert doubled["text"] == ["a cat", "a dog", "one cat", "two dogs"]
    assert doubled["text_pair"] == ["one cat", "two dogs", "a cat", "a dog"]
    assert doubled["labels"] == [1, 0, 1, 0]
    assert doubled["line"] == [2, 3, 2, 3]


def test_swapped_pairs_keep_the_row_order() -> None:
    split = datasets.Dataset.from_dict({"text": ["a", "b"], "text_pair": ["x", "y"], "labels": [1, 0]})
    assert swapped(split).to_dict() == {"text": ["x", "y"], "text_pair": ["a", "b"], "labels": [1, 0]}


@pytest.mark.parametrize("option", ["swap_pairs", "average_pair_orders"])
def test_swapping_needs_a_second_text_column(option: str) -> None:
    with pytest.raises(UserError, match=f"{option} needs a second text.*text_pair_column"):
        validate_config({"data": {"train": "pairs.csv", option: True}}, "config.yaml")


@pytest.mark.parametrize("option", ["swap_pairs", "average_pair_orders"])
def test_ner_refuses_swapping(option: str) -> None:
    data = {"train": "train.conll", "text_pair_column": "context", option: True}
    with pytest.raises(UserError, match=f"data.{option} swaps .*task ner tags one token sequence: drop it"):
        validate_config({"task": "ner", "data": data}, "config.yaml")


def write_pairs_csv(path: Path, rows: int = 60) -> Path:
    """Label 1 when both texts carry the same word, 0 otherwise: a symmetric relation."""
    words = ["red", "green", "blue", "black"]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["first", "second", "same"])
        for i in range(rows):
            left, right = words[i % 4], words[(i // 2) % 4]
            writer.writerow([f"the {left} one", f"a {right} thing", int(left == right)])
    return path


def test_a_run_trains_on_both_orders(tiny_model: str, tmp_path: Path) -> None:
    pairs = write_pairs_csv(tmp_path / "pairs.csv")
    config = {
        "model": tiny_model,
        "data": {"train": str(pairs), "text_column": "first", "text_pair_column": "second", "label_column": "same"},
        "training": {"epochs": 1, "batch_size": 8},
    }
    plain = tunesmith.finetune({**config, "output_dir": str(tmp_path / "plain")}).metrics
    config["data"]["swap_pairs"] = True
    swapped = tunesmith.finetune({**config, "output_dir": str(tmp_path / "swapped")}).metrics
    assert swapped["training"]["examples"]["train"] == 2 * plain["training"]["examples"]["train"]
    # Only training grows: the splits that are scored stay as they were.
    assert swapped["training"]["examples"]["validation"] == plain["training"]["examples"]["validation"]
    assert swapped["training"]["steps"] == 2 * plain["training"]["steps"]


def test_averaged_orders_score_a_pair_alike_either_way_round_in_every_path(tiny_model: str, tmp_path: Path) -> None:
    pairs, validation = write_pairs_csv(tmp_path / "pairs.csv"), write_pairs_csv(tmp_path / "validation.csv", rows=20)
    data = {"train": str(pairs), "validation": str(validation), "test_split": 0, "text_column": "first",
            "text_pair_column": "second", "label_column": "same", "average_pair_orders": True}  # fmt: skip
    run = tunesmith.finetune({"model": tiny_model, "output_dir": str(tmp_path / "run"), "data": data,
                              "training": {"epochs": 1, "batch_size": 8}})  # fmt: skip
    with open(validation, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    firsts, seconds = [row["first"] for row in rows], [row["second"] for row in rows]
    predictor = tunesmith.load(run.path)
    forward, backward = predictor.predict(firsts, seconds), predictor.predict(seconds, firsts)
    for one, other in zip(forward, backward, strict=True):
        assert one["probabilities"] == pytest.approx(other["probabilities"], abs=1e-6)
    # Training's evaluation, `evaluate` and `predict` all score the average of both orders.
    correct = [result["label"] == row["same"] for result, row in zip(forward, rows, strict=True)]
    assert run.metrics["validation"]["accuracy"] == pytest.approx(sum(correct) / len(rows))
    evaluated = predictor.evaluate(validation)
    assert evaluated["accuracy"] == run.metrics["validation"]["accuracy"]
    assert evaluated["loss"] == pytest.approx(run.metrics["validation"]["loss"], rel=1e-5)
    # A barely trained tiny model hardly tells the orders apart (its probabilities differ by about
    # 1e-6). Give the second segment an embedding of its own and magnify the head, so that it
    # surely does: averaged, the orders still agree, and without the averaging they differ, so
    # the checks above can fail.
    model = predictor.model
    with torch.no_grad():
        types = model.base_model.embeddings.token_type_embeddings.weight
        types[1] = torch.randn(types.shape[1], generator=torch.Generator().manual_seed(0))
        model.classifier.weight.mul_(10)
    forward, backward = predictor.predict(firsts, seconds), predictor.predict(seconds, firsts)
    for one, other in zip(forward, backward, strict=True):
        assert one["probabilities"] == pytest.approx(other["probabilities"], abs=1e-6)
    predictor.task.cfg.data.average_pair_orders = False
    one_way, other_way = predictor.predict(firsts, seconds), predictor.predict(seconds, firsts)
    assert any(
        a["probabilities"] != pytest.approx(b["probabilities"], abs=1e-4)
        for a, b in zip(one_way, other_way, strict=True)
    )
