import csv
from pathlib import Path

import datasets
import pytest

import tunesmith
from tunesmith.config import validate_config
from tunesmith.data.augment import swap_pairs
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


def test_swapping_needs_a_second_text_column() -> None:
    with pytest.raises(UserError, match="text_pair_column"):
        validate_config({"data": {"train": "pairs.csv", "swap_pairs": True}}, "config.yaml")


def test_ner_refuses_swapping() -> None:
    data = {"train": "train.conll", "text_pair_column": "context", "swap_pairs": True}
    with pytest.raises(UserError, match="task ner tags one token sequence: drop it"):
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
