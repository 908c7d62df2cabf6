import csv
import json
import logging
import pickle
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml

import tunesmith
from tests.conftest import WritesMarker, edit_weights, train_once
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


# Damaged and foreign run folders: each is refused with a UserError that names the file, before
# anything of it runs or loads half; never a model with weights left at random.


def test_a_copied_run_loads_and_predicts_like_the_original(run_copy: Path, trained_run: Path) -> None:
    # The control for the damaged copies below.
    texts = ["a wonderful one", "so boring"]
    assert tunesmith.load(run_copy).predict(texts) == tunesmith.load(trained_run).predict(texts)


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda weights: weights.write_bytes(b""), "model.safetensors is not a whole safetensors file"),
        (
            lambda weights: weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2]),
            "model.safetensors is not a whole safetensors file",
        ),
        (lambda weights: edit_weights(weights, lambda w: w.pop("classifier.weight")), r"1 missing \(classifier.weight"),
        (
            lambda weights: edit_weights(weights, lambda w: w.pop("bert.encoder.layer.0.attention.self.query.weight")),
            r"1 missing \(bert.encoder.layer.0.attention.self.query.weight",
        ),
        (
            lambda weights: edit_weights(weights, lambda w: w.update(extra=w["classifier.bias"].clone())),
            r"1 unknown to the model \(extra\)",
        ),
    ],
    ids=["empty", "half", "head-missing", "encoder-missing", "unknown"],
)
def test_damaged_weights_are_refused_never_left_at_random(run_copy: Path, damage, expected: str) -> None:
    damage(run_copy / "model" / "model.safetensors")
    with pytest.raises(UserError, match=expected) as refused:
        tunesmith.load(run_copy)
    assert str(run_copy / "model") in str(refused.value) and "copy it again" in str(refused.value)


def test_pickled_weights_in_place_of_safetensors_are_refused_and_never_unpickled(
    run_copy: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "unpickled"
    (run_copy / "model" / "model.safetensors").unlink()
    (run_copy / "model" / "pytorch_model.bin").write_bytes(pickle.dumps(WritesMarker(marker)))
    with pytest.raises(UserError, match=r"model holds its weights as pytorch_model.bin, not model.safetensors"):
        tunesmith.load(run_copy)
    assert not marker.exists()


@pytest.mark.parametrize("model_type", [None, "bert"], ids=["unknown-type", "bert"])
def test_a_run_whose_model_names_code_of_its_own_is_refused_and_the_code_never_runs(
    run_copy: Path, tmp_path: Path, model_type: str | None
) -> None:
    marker = tmp_path / "code-ran"
    model = run_copy / "model"
    (model / "custom.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    settings = json.loads((model / "config.json").read_text())
    settings.pop("model_type")
    settings.update(auto_map={"AutoConfig": "custom.Config"}, **({"model_type": model_type} if model_type else {}))
    (model / "config.json").write_text(json.dumps(settings))
    with pytest.raises(UserError, match=rf"Model {re.escape(str(model))} ships its own Python code.*tunesmith never"):
        tunesmith.load(run_copy)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("config.yaml", r"config.yaml is missing, so the settings the run was trained with"),
        ("labels.json", r"labels.json is missing or not readable JSON"),
        ("model/config.json", r"is a finished run, but neither model/config.json nor adapter/adapter_config.json"),
    ],
)
def test_a_run_folder_missing_a_file_names_it(run_copy: Path, name: str, expected: str) -> None:
    (run_copy / "task.json").unlink()  # as runs older than task.json are: the labels come from labels.json
    (run_copy / name).unlink()
    with pytest.raises(UserError, match=expected):
        tunesmith.load(run_copy)


def test_a_run_folder_that_does_not_exist_says_so(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        tunesmith.load(tmp_path / "no-such-run")


def test_an_old_run_with_a_max_length_beyond_the_positions_predicts_long_texts_cut_to_them(
    run_copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Runs planned before max_length was checked against the model may hold one longer than its
    # 128 positions; a text that long crashed the model's position embeddings.
    assert tunesmith.load(run_copy).config.training.max_length == 128  # what planning now records
    settings = yaml.safe_load((run_copy / "config.yaml").read_text())
    settings["training"]["max_length"] = 1000
    (run_copy / "config.yaml").write_text(yaml.safe_dump(settings))
    long_text = " ".join(["wonderful"] * 300)
    with caplog.at_level(logging.WARNING, logger="tunesmith"):
        predictor = tunesmith.load(run_copy)
    assert predictor.config.training.max_length == 128
    assert "training.max_length 1000 in the run's config.yaml is longer than the model's 128 positions" in caplog.text
    cut = predictor.tokenizer.decode(predictor.tokenizer(long_text, truncation=True, max_length=128)["input_ids"])
    [result] = predictor.predict([long_text])
    assert result == predictor.predict([cut.removeprefix("[CLS] ").removesuffix(" [SEP]")])[0]


def first_adapter_weight(weights: dict) -> str:
    return next(name for name in sorted(weights) if "lora_A" in name or ".adapter." in name)


def head_weight(weights: dict) -> str:
    return next(name for name in sorted(weights) if name.endswith("classifier.weight"))


@pytest.fixture(scope="module", params=["lora", "adapter"])
def adapter_run(request: pytest.FixtureRequest, tiny_model: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run saved as adapter/ only: peft's LoRA without merging, or tunesmith's bottleneck adapters."""
    return train_once(tmp_path_factory, tiny_model, strategy=request.param, lora={"merge": False})


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda folder: None, None),
        (
            lambda folder: (folder / "adapter_model.safetensors").write_bytes(b"\0" * 100),
            "adapter_model.safetensors is not a whole safetensors file",
        ),
        (
            # peft loads without it, and only warns.
            lambda folder: edit_weights(folder / "adapter_model.safetensors", lambda w: w.pop(first_adapter_weight(w))),
            r"adapter_model.safetensors does not hold the weights of this run's adapter: 1 missing",
        ),
        (
            # peft itself fails here; a bottleneck adapter loaded without complaint.
            lambda folder: edit_weights(folder / "adapter_model.safetensors", lambda w: w.pop(head_weight(w))),
            r"classifier.weight",
        ),
        (
            lambda folder: edit_weights(
                folder / "adapter_model.safetensors", lambda w: w.update(extra=w[max(w)].clone())
            ),
            r"adapter_model.safetensors does not hold the weights of this run's adapter: 1 unknown \(extra\)",
        ),
        (lambda folder: (folder / "adapter_config.json").write_text("{"), "adapter_config.json is not readable JSON"),
    ],
    ids=["intact", "zeros", "weight-missing", "head-missing", "unknown-weight", "config-broken"],
)
def test_a_damaged_adapter_folder_is_refused(adapter_run: Path, tmp_path: Path, damage, expected: str | None) -> None:
    run = Path(shutil.copytree(adapter_run, tmp_path / "run"))
    assert not (run / "model").exists()
    damage(run / "adapter")
    if expected is None:
        assert tunesmith.load(run).predict(["so boring"]) == tunesmith.load(adapter_run).predict(["so boring"])
        return
    with pytest.raises(UserError, match=expected) as refused:
        tunesmith.load(run)
    assert str(run / "adapter") in str(refused.value)
