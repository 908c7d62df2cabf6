"""The expected calibration error and its bins, against numbers worked out by hand."""

from __future__ import annotations

import math

import pytest

from tunesmith.evaluate.calibration import expected_calibration_error, reliability_bins, scores


def test_ece_weights_each_bins_gap_by_its_share_of_the_examples() -> None:
    # Bin (0.8, 0.9]: confidence 0.85, accuracy 1/2 -> gap 0.35 on half the examples;
    # bin (0.5, 0.6]: confidence 0.55, accuracy 1 -> gap 0.45 on the other half.
    confidence, correct = [0.85, 0.85, 0.55, 0.55], [True, False, True, True]
    assert expected_calibration_error(confidence, correct, bins=10) == pytest.approx(0.5 * 0.35 + 0.5 * 0.45)


def test_a_calibrated_model_scores_zero_and_an_overconfident_one_its_gap() -> None:
    # Three in four right at confidence 0.75: calibrated.
    assert expected_calibration_error([0.75] * 4, [True, True, True, False]) == pytest.approx(0.0)
    # Always sure, right half the time.
    assert expected_calibration_error([1.0] * 4, [True, False, True, False]) == pytest.approx(0.5)
    assert expected_calibration_error([], []) == 0.0


def test_the_bins_cover_zero_to_one_with_each_edge_in_the_bin_it_closes() -> None:
    bins = reliability_bins([0.0, 0.1, 0.1000001, 1.0], [True, True, False, True], bins=10)
    assert [b.count for b in bins] == [2, 1, 0, 0, 0, 0, 0, 0, 0, 1]
    assert bins[0].lower == 0.0 and bins[-1].upper == 1.0
    assert bins[0].accuracy == 1.0 and bins[1].accuracy == 0.0 and math.isnan(bins[5].accuracy)


def test_scores_are_given_only_for_records_with_a_confidence() -> None:
    records = [{"gold": "a", "predicted": "a", "confidence": 1.0}, {"gold": "a", "predicted": "b", "confidence": 1.0}]
    assert scores(records) == {"ece": pytest.approx(0.5)}
    assert scores([{"gold": 1.0, "predicted": 2.0}]) == {}


def test_evaluating_a_run_on_its_validation_rows_gives_its_calibration_error(trained_run, tmp_path) -> None:
    import csv
    import json

    from tunesmith.evaluate.parts import read_examples
    from tunesmith.predictor import load

    records = read_examples(trained_run / "predictions.jsonl")["validation"]
    path = tmp_path / "validation.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows([r["text"], r["gold"]] for r in records)
    metrics = load(trained_run).evaluate(path)
    expected = json.loads((trained_run / "metrics.json").read_text())["validation"]
    assert metrics["accuracy"] == expected["accuracy"]
    assert metrics["ece"] == pytest.approx(expected["ece"], abs=1e-5)
