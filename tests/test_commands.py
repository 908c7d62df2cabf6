"""The helpers every command shares: items, --output checks, prediction formats."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tunesmith.commands import check_output_file, format_predictions, split_items
from tunesmith.errors import UserError


def test_split_items_takes_one_config_and_the_assignments() -> None:
    assert split_items(["a.yaml", "training.epochs=1"]) == (Path("a.yaml"), ["training.epochs=1"])
    assert split_items(["training.epochs=1"]) == (None, ["training.epochs=1"])
    with pytest.raises(UserError, match="one config file, not 2"):
        split_items(["a.yaml", "b.yaml"])


def test_output_may_not_be_an_input_a_run_file_or_a_folder(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_text("{}")
    data = tmp_path / "data.csv"
    data.write_text("text\nx\n")
    (tmp_path / "link.csv").symlink_to(data)
    with pytest.raises(UserError, match="is the --input file"):
        check_output_file(str(tmp_path / "link.csv"), run, {"--input": data})
    with pytest.raises(UserError, match="a file of the run folder"):
        check_output_file(str(run / "metrics.json"), run, {})
    with pytest.raises(UserError, match="is a folder"):
        check_output_file(str(tmp_path), run, {})
    with pytest.raises(UserError, match="does not exist"):
        check_output_file(str(tmp_path / "missing" / "out.csv"), run, {})
    assert check_output_file(str(tmp_path / "out.csv"), run, {"--input": data}) == tmp_path / "out.csv"
    assert check_output_file(None, run, {}) is None


def test_an_input_column_named_like_a_prediction_field_is_kept_beside_it() -> None:
    rows = [{"text": "good", "label": "pos"}]
    results = [{"label": "neg", "score": 0.75, "probabilities": {"neg": 0.75, "pos": 0.25}}]
    line = json.loads(format_predictions(rows, results, as_csv=False))
    assert line["input_label"] == "pos" and line["label"] == "neg" and line["text"] == "good"
    table = list(csv.DictReader(io.StringIO(format_predictions(rows, results, as_csv=True))))
    assert table == [
        {"text": "good", "input_label": "pos", "label": "neg", "score": "0.750000", "p_neg": "0.750000",
         "p_pos": "0.250000"}
    ]  # fmt: skip
