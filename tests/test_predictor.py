import csv
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import tunesmith
from tunesmith import predictor as predictor_module
from tunesmith.config import RunConfig
from tunesmith.errors import UserError
from tunesmith.predictor import Predictor


@pytest.fixture
def finished_run(tiny_config: dict):
    return tunesmith.finetune(tiny_config)


def test_the_model_goes_where_accelerate_would_train(finished_run, monkeypatch: pytest.MonkeyPatch) -> None:
    # The meta device stands in for a GPU on a machine without one.
    monkeypatch.setattr(predictor_module, "Accelerator", lambda: SimpleNamespace(device=torch.device("meta")))
    model = tunesmith.load(finished_run.path).model
    assert {parameter.device.type for parameter in model.parameters()} == {"meta"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_a_gpu_predict_and_evaluate_run_there_and_agree_with_the_cpu(finished_run, sentiment_csv: Path) -> None:
    with open(sentiment_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    texts = [row["text"] for row in rows]
    on_gpu = tunesmith.load(finished_run.path)
    assert next(on_gpu.model.parameters()).device.type == "cuda"
    on_cpu = tunesmith.load(finished_run.path)
    on_cpu.model.cpu()
    from_cpu = on_cpu.predict(texts)
    for gpu_row, cpu_row in zip(on_gpu.predict(texts), from_cpu, strict=True):
        assert gpu_row["label"] == cpu_row["label"]
        assert gpu_row["score"] == pytest.approx(cpu_row["score"], abs=1e-4)
    cpu_accuracy = sum(p["label"] == row["label"] for p, row in zip(from_cpu, rows, strict=True)) / len(rows)
    assert on_gpu.evaluate(sentiment_csv)["accuracy"] == pytest.approx(cpu_accuracy)


def test_predictions_with_the_first_token_last_layer_are_the_full_models(finished_run, sentiment_csv: Path) -> None:
    with open(sentiment_csv, newline="") as handle:
        texts = [row["text"] for row in csv.DictReader(handle)]
    predictor = tunesmith.load(finished_run.path)
    last = predictor.model.bert.encoder.layer[-1]
    assert "forward" in vars(last)  # the run's default, cpu_speedups: true
    fast = predictor.predict(texts)
    del last.forward
    for fast_row, full_row in zip(fast, predictor.predict(texts), strict=True):
        assert fast_row["probabilities"] == pytest.approx(full_row["probabilities"], abs=1e-6)


def test_predicting_from_a_file_imports_no_dataset_or_adapter_library(
    finished_run, sentiment_csv: Path, tmp_path: Path
) -> None:
    # datasets (with pandas and pyarrow) and peft added about 100 MB to a predicting process.
    # A fresh process, since this one has long imported them all.
    output = tmp_path / "predictions.csv"
    probe = (
        "import json, sys; from tunesmith.cli import main; "
        f"code = main(['predict', {str(finished_run.path)!r}, '--input', {str(sentiment_csv)!r}, "
        f"'--output', {str(output)!r}]); "
        "print(json.dumps([code, sorted({'datasets', 'pandas', 'pyarrow', 'peft'} & set(sys.modules))]))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [0, []]
    with open(sentiment_csv, newline="") as handle:
        texts = [row["text"] for row in csv.DictReader(handle)]
    with open(output, newline="") as handle:
        written = list(csv.DictReader(handle))
    expected = tunesmith.load(finished_run.path).predict(texts)
    assert [row["label"] for row in written] == [row["label"] for row in expected]
    assert [float(row["score"]) for row in written] == pytest.approx([row["score"] for row in expected], abs=1e-5)


def bare_predictor(**data: str) -> Predictor:
    """A predictor without a model: enough for what predict refuses before the model runs."""
    return Predictor(model=None, tokenizer=None, config=RunConfig(data={"train": "train.csv", **data}), task=None)


@pytest.mark.parametrize(
    ("texts", "fragment"),
    [
        ("", "texts[0] is empty"),
        (["fine", " \t\n"], "texts[1] is empty"),
        (["\u200b\u200b"], "texts[0] is only invisible characters (U+200B ZERO WIDTH SPACE)"),
        (["fine", None], "texts[1] is None (of type NoneType), not a string"),
    ],
    ids=["empty", "whitespace", "zero-width", "none"],
)
def test_predict_refuses_a_text_without_anything_to_read(texts: list | str, fragment: str) -> None:
    with pytest.raises(UserError) as caught:
        bare_predictor().predict(texts)
    assert fragment in str(caught.value)


def test_second_texts_are_refused_by_a_single_text_run_and_required_by_a_pair_run() -> None:
    with pytest.raises(UserError, match=r"trained on single texts .* Predict without --text-pair \(text_pairs"):
        bare_predictor().predict(["a film"], ["a movie"])
    pairs = bare_predictor(text_pair_column="second")
    with pytest.raises(UserError, match=r'trained on sentence pairs \(data.text_pair_column "second"\)'):
        pairs.predict(["a film"])
    with pytest.raises(UserError, match="2 texts but 1 second texts"):
        pairs.predict(["a film", "a play"], ["a movie"])
    with pytest.raises(UserError, match=r"text_pairs\[0\] is empty"):
        pairs.predict("a film", "")


def test_a_refused_text_costs_the_loaded_predictor_nothing(finished_run) -> None:
    predictor = tunesmith.load(finished_run.path)
    with pytest.raises(UserError, match=r"texts\[1\] is empty"):
        predictor.predict(["a wonderful one", ""])
    with pytest.raises(UserError, match="trained on single texts"):
        predictor.predict(["a wonderful one"], ["a second text"])
    assert [result["label"] for result in predictor.predict(["a wonderful one"])] in (["pos"], ["neg"])
