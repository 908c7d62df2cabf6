"""The report's task parts on finished runs: regression's predicted-against-gold, NER's entity errors."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

import tunesmith
from tests.conftest import ner_sentences, write_conll, write_regression_csv
from tunesmith.evaluate.parts import read_examples

pytestmark = [pytest.mark.figures, pytest.mark.explained]

PNG = b"\x89PNG\r\n\x1a\n"


def assert_metrics_table_is_metrics_json(report: str, metrics: dict) -> None:
    from tests.evaluate.test_rebuild import table_numbers

    numbers = table_numbers(report)
    assert len(numbers) >= 5
    for (metric, split), shown in numbers.items():
        assert shown == round(metrics[split][metric], 4), (metric, split)


def train(tiny_model: str, tmp_path: Path, task: str, data: dict) -> Path:
    config = {
        "task": task,
        "model": tiny_model,
        "output_dir": str(tmp_path / "run"),
        "data": data,
        "training": {"epochs": 2, "batch_size": 8, "learning_rate": 2e-3, "warmup_ratio": 0.0},
    }
    if task == "regression":
        # Scaled for training: the report must show the data's own units.
        config["regression"] = {"target_scaling": "standard"}
    return tunesmith.finetune(config).path


def test_a_regression_report_plots_predicted_against_gold_and_lists_the_largest_errors(
    tiny_model: str, tmp_path: Path
) -> None:
    source = write_regression_csv(tmp_path / "scores.csv")
    run = train(tiny_model, tmp_path, "regression", {"train": str(source), "label_column": "score"})
    rows = list(csv.DictReader(source.open()))
    records = read_examples(run / "predictions.jsonl")["validation"]
    metrics = json.loads((run / "metrics.json").read_text())
    # Gold values as written (line 1 is the header), errors in those units.
    assert [r["gold"] for r in records] == pytest.approx(
        [float(rows[r["line"] - 2]["score"]) for r in records], abs=1e-5
    )
    mae = sum(abs(r["predicted"] - r["gold"]) for r in records) / len(records)
    assert mae == pytest.approx(metrics["validation"]["mae"], abs=1e-5)
    text = (run / "report.md").read_text()
    assert (run / "predicted_vs_gold.png").read_bytes().startswith(PNG) and "](predicted_vs_gold.png)" in text
    table = text.split("## Largest errors (validation)", 1)[1].strip().splitlines()[2:]
    errors = [abs(float(line.split("|")[3])) for line in table if line.startswith("|")]
    largest = max(abs(r["predicted"] - r["gold"]) for r in records)
    assert errors == sorted(errors, reverse=True) and errors[0] == pytest.approx(largest, abs=5e-4)
    assert "reliability.png" not in text and not (run / "reliability.png").exists()
    # The largest errors explained: words raising or lowering the predicted value.
    explained = json.loads((run / "explanations.json").read_text())
    assert [item["line"] for item in explained] == [
        r["line"] for r in sorted(records, key=lambda r: -abs(r["predicted"] - r["gold"]))[:3]
    ]
    assert "  - raising it: " in text and "  - towards " not in text
    assert_metrics_table_is_metrics_json(text, metrics)


def test_a_ner_report_sorts_the_entities_into_outcomes_that_agree_with_its_recall(
    tiny_model: str, tmp_path: Path
) -> None:
    source = write_conll(tmp_path / "train.conll", ner_sentences(60))
    run = train(tiny_model, tmp_path, "ner", {"train": str(source)})
    metrics = json.loads((run / "metrics.json").read_text())
    text = (run / "report.md").read_text()
    section = text.split("## Entity errors (validation)", 1)[1]
    rows = {}
    for line in section.strip().splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if line.startswith("|") and re.fullmatch(r"[A-Z]+", cells[0]):
            rows[cells[0]] = [int(cell) for cell in cells[1:]]
    assert set(rows) <= {"PER", "LOC"} and rows
    per_type = metrics["validation"]["per_class"]
    for kind, (right, wrong_type, boundary, missed, _) in rows.items():
        assert right + wrong_type + boundary + missed == per_type[kind]["support"]
        assert right / per_type[kind]["support"] == pytest.approx(per_type[kind]["recall"])
    assert not (run / "explanations.json").exists()  # a tagger's errors are not explained
    assert_metrics_table_is_metrics_json(text, metrics)
    records = read_examples(run / "predictions.jsonl")["validation"]
    if any(r["gold"] != r["predicted"] for r in records):
        assert "## Sentences with errors (validation)" in text and "]LOC" in text
