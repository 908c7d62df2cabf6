"""The doctor finds the known problems of the shared benchmark data (their SOURCE.md files list them)."""

from __future__ import annotations

import pytest

from tests.conftest import shared_file
from tests.data.doctor.helpers import checks, config, doctor


@pytest.mark.slow
def test_sst2_train_sentences_with_both_labels_and_test_sentences_in_train() -> None:
    folder = shared_file("sst2")
    data = {
        "train": str(folder / "train.tsv"),
        "validation": str(folder / "dev.tsv"),
        "test": str(folder / "test.tsv"),
        "text_column": "sentence",
    }
    found = checks(doctor(config(data=data)))
    assert found[("conflicting_labels", "train")] == 5
    assert found[("duplicates", "train")] == 371
    assert found[("split_overlap", "test/train")] == 2
    assert ("split_overlap", "validation/train") not in found


def test_chnsenticorp_dev_texts_in_train_and_conflicting_duplicates() -> None:
    folder = shared_file("chnsenticorp")
    data = {
        "train": str(folder / "train.tsv"),
        "validation": str(folder / "dev.tsv"),
        "text_column": "text_a",
        "test_split": 0,
    }
    report = doctor(config(data=data))
    found = checks(report)
    assert found[("conflicting_labels", "train")] == 24
    assert found[("conflicting_labels", "validation")] == 1
    # SOURCE.md counts 335 byte for byte; 3 more differ from a train text only in whitespace.
    assert found[("split_overlap", "validation/train")] == 338
    duplicates = next(f for f in report.findings if f.check == "duplicates" and f.split == "train")
    assert "(1,351 extra rows)" in duplicates.message


@pytest.mark.slow
def test_goemotions_repeated_texts_with_different_label_sets() -> None:
    folder = shared_file("goemotions")
    data = {
        "train": str(folder / "train.tsv"),
        "validation": str(folder / "dev.tsv"),
        "test": str(folder / "test.tsv"),
        "column_names": ["text", "labels", "id"],
        "label_column": "labels",
        "label_names": str(folder / "labels.txt"),
    }
    found = checks(doctor(config(task="multilabel", data=data)))
    assert found[("conflicting_labels", "train")] >= 58
    assert found[("conflicting_labels", "validation")] == 1
    assert found[("conflicting_labels", "test")] == 1
    assert found[("class_imbalance", "train")] > 0
