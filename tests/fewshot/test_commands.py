"""The commands: predict --zero-shot, fewshot (seeds, mean ± std), select (active learning)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

import tunesmith
from tunesmith.cli import main
from tunesmith.fewshot.select import choose, entropy, margin


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["predict", "--text", "x"], "needs a RUN_DIR"),
        (["predict", "--zero-shot", "--text", "x"], "needs the labels"),
        (["predict", "--labels", "a,b", "--text", "x"], "add --zero-shot"),
        (["predict", "runs/x", "--zero-shot", "--labels", "a,b", "--text", "x"], "drop runs/x"),
        (["predict", "--zero-shot", "--labels", "a", "--text", "x"], "at least two labels"),
        (["predict", "--zero-shot", "--labels", "a,b", "--template", "plain", "--text", "x"], "placeholder"),
        (["predict", "--zero-shot", "--labels", "a,b", "--text", "  "], "--text number 1"),
    ],
)
def test_zero_shot_prediction_refuses_bad_input_with_exit_code_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture
) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_predict_zero_shot_writes_one_row_per_input(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    source = tmp_path / "texts.csv"
    source.write_text("id,text\n7,The team won the final match.\n8,Shares fell on the stock market.\n")
    output = tmp_path / "out.csv"
    argv = ["predict", "--zero-shot", "--labels", "sports,finance=money and stocks", "--input", str(source)]
    assert main([*argv, "--output", str(output)]) == 0
    rows = list(csv.DictReader(output.open()))
    assert [(row["id"], row["label"]) for row in rows] == [("7", "sports"), ("8", "finance")]
    assert float(rows[0]["p_sports"]) + float(rows[0]["p_finance"]) == pytest.approx(1.0, abs=1e-5)


def test_uncertainty_and_diversity_choose_as_defined() -> None:
    probabilities = np.array([[0.9, 0.1], [0.5, 0.5], [0.6, 0.4], [0.99, 0.01]])
    np.testing.assert_allclose(margin(probabilities), [0.8, 0.0, 0.2, 0.98])
    assert entropy(probabilities)[1] == pytest.approx(np.log(2))
    assert choose("entropy", 2, 0, 4, probabilities=probabilities)[0].tolist() == [1, 2]
    assert choose("margin", 3, 0, 4, probabilities=probabilities)[0].tolist() == [1, 2, 0]
    random = choose("random", 3, 5, 4)[0]
    assert len(set(random.tolist())) == 3 and choose("random", 3, 5, 4)[0].tolist() == random.tolist()
    # Three tight clusters: one text from each.
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    points = np.concatenate([centre + np.random.default_rng(0).normal(0, 0.1, (5, 2)) for centre in centres])
    chosen, _ = choose("diversity", 3, 0, len(points), embeddings=points)
    assert sorted(index // 5 for index in chosen) == [0, 1, 2]


@pytest.fixture
def zero_shot_run(tiny_config: dict) -> Path:
    return tunesmith.finetune({**tiny_config, "method": "zero_shot"}).path


def test_select_writes_the_k_most_uncertain_pool_rows(zero_shot_run: Path, tmp_path: Path) -> None:
    pool = tmp_path / "pool.csv"
    pool.write_text("text\n" + "".join(f"text number {i} was great\n" for i in range(12)))
    output = tmp_path / "next.csv"
    assert (
        main(["select", str(zero_shot_run), "--pool", str(pool), "--k", "4", "--by", "margin", "--output", str(output)])
        == 0
    )
    rows = list(csv.DictReader(output.open()))
    assert [row["rank"] for row in rows] == ["1", "2", "3", "4"]
    margins = [float(row["margin"]) for row in rows]
    assert margins == sorted(margins)
    predictor = tunesmith.load(zero_shot_run)
    texts = [f"text number {i} was great" for i in range(12)]
    all_margins = margin(predictor.probabilities(texts))
    assert margins == pytest.approx(sorted(all_margins)[:4], abs=1e-6)
    assert main(["select", str(zero_shot_run), "--pool", str(pool), "--k", "0"]) == 2


def test_fewshot_tabulates_mean_and_std_over_seeds(tiny_config: dict, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**tiny_config, "method": "zero_shot"}))
    output = tmp_path / "sweep"
    argv = ["fewshot", str(config), "--shots", "2,4", "--seeds", "2", "--output-dir", str(output)]
    assert main([*argv, "--zero-shot-baseline"]) == 0
    rows = json.loads((output / "fewshot.json").read_text())
    assert [(row["shots"], row["seed"]) for row in rows] == [(0, 0), (2, 0), (2, 1), (4, 0), (4, 1)]
    assert rows[0]["method"] == "zero_shot" and (output / "zero-shot" / "head.safetensors").is_file()
    rows = rows[1:]
    table = (output / "fewshot.md").read_text()
    tests = [row["test"] for row in rows[:2]]
    assert f"{np.mean(tests):.4f} ± {np.std(tests, ddof=1):.4f}" in table
    metrics = json.loads((output / "4shot-seed1" / "metrics.json").read_text())
    assert metrics["training"]["examples"]["train"] == 8
