"""Likely label errors: flipped labels are flagged first, a clean set gives none, the doctor lists them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.data.doctor.helpers import clean_rows, config, write_csv
from tunesmith.data.doctor.examine import examine
from tunesmith.data.doctor.label_errors import rank
from tunesmith.data.splits import load_splits


def clusters(rows_per_class: int, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Three well separated classes in 16 dimensions."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, size=(3, 16))
    features = np.concatenate([centre + rng.normal(0, 1, size=(rows_per_class, 16)) for centre in centres])
    return features, [name for name in "abc" for _ in range(rows_per_class)]


def test_flipped_labels_are_flagged_first_and_a_clean_set_gives_none() -> None:
    features, labels = clusters(60)
    assert rank(labels, features, folds=5, seed=0).flagged == []
    flipped = [3, 70, 150, 20, 100]
    noisy = list(labels)
    for row in flipped:
        noisy[row] = "b" if labels[row] != "b" else "c"
    ranking = rank(noisy, features, folds=5, seed=0)
    # Every flag is a flipped row, and at least 4 of the 5 flips are flagged (cleanlab flags a row only when
    # another class is likelier than that class's own rows usually are, which a border case may miss).
    assert set(ranking.flagged) <= set(flipped) and len(ranking.flagged) >= 4
    assert ranking.accuracy > 0.95


def test_the_doctor_lists_the_suspects_with_given_and_suggested_labels(tmp_path: Path, tiny_model: str) -> None:
    rows = clean_rows(80)
    data = {"train": str(write_csv(tmp_path / "train.csv", rows)), "validation_split": 0, "test_split": 0}
    cfg = config(model=tiny_model, data=data, doctor={"label_error_rows": 50, "label_errors_listed": 3})
    loaded = load_splits(cfg.data, cfg.training.seed)
    report = examine(cfg, loaded, label_errors=True, backbone=tiny_model)
    measured = report.statistics["label_errors"]
    assert measured["examined_rows"] == 50 and measured["of_rows"] == 80 and measured["folds"] == 5
    assert 0.0 <= measured["out_of_fold_accuracy"] <= 1.0
    found = [finding for finding in report.findings if finding.check == "label_errors"]
    assert len(found) == (1 if measured["flagged"] else 0)
    for finding in found:
        assert finding.count == measured["flagged"] and len(finding.examples) == min(3, finding.count)
        for suspect in finding.examples:
            assert suspect["given"] in {"pos", "neg"} and suspect["suggested"] != suspect["given"]
            assert rows[suspect["line"] - 2][1] == suspect["given"]


def test_label_errors_are_looked_for_only_when_asked_and_only_for_classification(tmp_path: Path) -> None:
    data = {"train": str(write_csv(tmp_path / "train.csv", clean_rows(30))), "validation_split": 0, "test_split": 0}
    cfg = config(data=data)
    report = examine(cfg, load_splits(cfg.data, 0))
    assert "label_errors" not in report.statistics
    regression = config(
        task="regression",
        data={**data, "train": str(write_csv(tmp_path / "r.csv", [(t, "1.5") for t, _ in clean_rows(30)]))},
    )
    assert "label_errors" not in examine(regression, load_splits(regression.data, 0), label_errors=True).statistics
