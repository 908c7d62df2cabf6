"""report.md with figures: written at the end of a run, rebuilt by `tunesmith report`, its numbers metrics.json's."""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tunesmith.cli import main
from tunesmith.evaluate.rebuild import write_report

# These tests draw the figures (tests/conftest.py skips them elsewhere).
pytestmark = pytest.mark.figures

PNG = b"\x89PNG\r\n\x1a\n"


def table_numbers(report: str) -> dict[tuple[str, str], float]:
    """{(metric, split): value} of the report's metrics table."""
    lines = report.split("## Metrics", 1)[1].strip().splitlines()
    splits = [cell.strip() for cell in lines[0].strip("|").split("|")][1:]
    numbers = {}
    for line in lines[2:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        for split, cell in zip(splits, cells[1:], strict=True):
            if re.fullmatch(r"-?\d+\.\d{4}", cell):
                numbers[(cells[0], split)] = float(cell)
    return numbers


def test_a_finished_run_has_its_report_figures_and_the_numbers_of_metrics_json(trained_run: Path) -> None:
    text = (trained_run / "report.md").read_text()
    metrics = json.loads((trained_run / "metrics.json").read_text())
    numbers = table_numbers(text)
    assert len(numbers) >= 16  # nine classification metrics on two splits
    for (metric, split), shown in numbers.items():
        assert shown == round(metrics[split][metric], 4), (metric, split)
    for name in ("confusion_matrix.png", "per_class_f1.png", "learning_curves.png"):
        assert (trained_run / name).read_bytes().startswith(PNG) and f"]({name})" in text
    matrix = metrics["test"]["confusion_matrix"]
    assert f"| neg | {matrix[0][0]} | {matrix[0][1]} |" in text


def test_report_rebuilds_the_same_report_and_removes_only_its_stale_figures(
    run_copy: Path, capsys: pytest.CaptureFixture
) -> None:
    before = (run_copy / "report.md").read_text()
    (run_copy / "report.md").unlink()
    (run_copy / "learning_curves.png").unlink()
    assert main(["report", str(run_copy)]) == 0
    assert "report.md" in capsys.readouterr().out
    assert (run_copy / "report.md").read_text() == before and (run_copy / "learning_curves.png").is_file()
    # Without history there are no curves: the old figure goes, nothing else does.
    (run_copy / "history.jsonl").unlink()
    assert write_report(run_copy) == ["confusion_matrix.png", "per_class_f1.png", "reliability.png"]
    assert not (run_copy / "learning_curves.png").exists() and (run_copy / "metrics.json").is_file()


def test_report_needs_a_finished_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_predictions_jsonl_holds_each_evaluation_example_as_the_model_predicts_it(trained_run: Path) -> None:
    from tunesmith.api import load
    from tunesmith.evaluate.calibration import expected_calibration_error
    from tunesmith.evaluate.parts import read_examples

    metrics = json.loads((trained_run / "metrics.json").read_text())
    examples = read_examples(trained_run / "predictions.jsonl")
    source = (trained_run.parent / "sentiment.csv").read_text().splitlines()
    predictor = load(trained_run)
    for split in ("validation", "test"):
        records = examples[split]
        assert len(records) == metrics["training"]["examples"][split]
        # Each record's text is its line's, and its prediction the model's on that text (the rows were
        # batched longest first and are back in their own order).
        assert all(source[r["line"] - 1].startswith(r["text"] + ",") for r in records)
        results = predictor.predict([r["text"] for r in records])
        assert [r["predicted"] for r in records] == [result["label"] for result in results]
        assert all(abs(r["confidence"] - result["score"]) < 1e-4 for r, result in zip(records, results, strict=True))
        accuracy = sum(r["gold"] == r["predicted"] for r in records) / len(records)
        assert accuracy == metrics[split]["accuracy"]
        confidence, correct = [r["confidence"] for r in records], [r["gold"] == r["predicted"] for r in records]
        assert metrics[split]["ece"] == pytest.approx(expected_calibration_error(confidence, correct), abs=1e-5)
    text = (trained_run / "report.md").read_text()
    assert f"| validation | {metrics['validation']['ece']:.4f} |" in text and "](reliability.png)" in text
    assert (trained_run / "reliability.png").read_bytes().startswith(PNG)


def test_the_baselines_table_holds_the_run_and_its_baselines_numbers(trained_run: Path) -> None:
    metrics = json.loads((trained_run / "metrics.json").read_text())
    lines = (trained_run / "report.md").read_text().split("## Baselines", 1)[1].strip().splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")][1:]
    assert header == ["validation accuracy", "validation f1_macro", "test accuracy", "test f1_macro"]
    rows = {}
    for line in lines[2:5]:
        cells = [cell.strip().strip("*") for cell in line.strip("|").split("|")]
        rows[cells[0]] = [float(cell) for cell in cells[1:]]
    columns = [column.split() for column in header]
    assert rows["this run"] == [round(metrics[split][key], 4) for split, key in columns]
    assert rows["majority class"] == [round(metrics["baselines"]["majority"][split][key], 4) for split, key in columns]
    assert rows["TF-IDF + logistic regression"] == [
        round(metrics["baselines"]["tfidf"][split][key], 4) for split, key in columns
    ]


def test_the_worst_errors_are_explained_in_the_report(trained_run: Path) -> None:
    from tunesmith.evaluate.parts import confident_mistakes, read_examples

    explained = json.loads((trained_run / "explanations.json").read_text())
    mistakes = confident_mistakes(read_examples(trained_run / "predictions.jsonl")["validation"], count=3)
    assert [item["line"] for item in explained] == [r["line"] for r in mistakes]
    for item, mistake in zip(explained, mistakes, strict=True):
        # The predicted label is explained, and the words add up to its change in probability.
        assert item["target"] == mistake["predicted"] and item["gold"] == mistake["gold"]
        total = sum(word["attribution"] for word in item["words"])
        assert total == pytest.approx(item["score"] - item["baseline_score"], abs=abs(item["delta"]) + 1e-6)
    text = (trained_run / "report.md").read_text()
    section = text.split("## Why the model erred (validation)", 1)[1]
    assert all(
        f"- line {item['line']}: gold {item['gold']}, predicted {item['target']}:" in section for item in explained
    )


class _Page(HTMLParser):
    """report.html's tables (rows of cell texts) and the sources of its images and links."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.sources: list[str] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in {"td", "th"}:
            self.cell = []
        for key in ("src", "href"):
            if found.get(key):
                self.sources.append(str(found[key]))

    def handle_endtag(self, tag: str) -> None:
        if tag in {"td", "th"} and self.cell is not None:
            self.tables[-1][-1].append("".join(self.cell).strip())
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def test_report_html_inlines_every_figure_and_shows_the_numbers_of_metrics_json(
    run_copy: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["report", str(run_copy), "--format", "html"]) == 0
    assert f"{run_copy / 'report.html'}," in capsys.readouterr().out
    page = _Page()
    page.feed((run_copy / "report.html").read_text(encoding="utf-8"))
    page.close()
    figures = sorted(path.name for path in run_copy.glob("*.png"))
    assert len(figures) >= 4
    # Every figure is in the page, as its own bytes; nothing else is fetched.
    inlined = [base64.b64decode(source.split(",", 1)[1]) for source in page.sources]
    assert all(source.startswith("data:image/png;base64,") for source in page.sources)
    assert sorted(inlined) == sorted((run_copy / name).read_bytes() for name in figures)
    metrics = json.loads((run_copy / "metrics.json").read_text())
    header, *rows = page.tables[0]
    assert header == ["metric", "validation", "test"]
    shown = {(row[0], split): float(cell) for row in rows for split, cell in zip(header[1:], row[1:], strict=True)}
    assert len(shown) >= 16
    for (metric, split), value in shown.items():
        assert value == round(metrics[split][metric], 4), (metric, split)


def test_report_html_shows_text_from_the_data_as_text(tmp_path: Path) -> None:
    from tunesmith.evaluate import html

    page = html.render("# Run x\n\n| text |\n|---|\n| <script>alert(1)</script> |\n", tmp_path, "Run <x>")
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<title>Run &lt;x&gt;</title>" in page
