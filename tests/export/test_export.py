"""`tunesmith export`: ONNX and merged exports that predict as the run does; a gate that refuses the others."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

import tunesmith
from tests.conftest import ner_sentences, train_once, write_conll
from tunesmith.cli import main
from tunesmith.export import GateFailed, export_run
from tunesmith.export.parity import Gate
from tunesmith.export.runtime import OnnxModel

# Lengths from one word to past the traced example's, alone and together: the axes must be free.
TEXTS = [
    "great",
    "what a lovely one",
    "an awful, boring and dreadful film that went on and on and on without a single good scene in it",
    "honestly a superb experience",
    "the service felt poor",
]
NO_GATE = Gate(max_logit_diff=None, min_agreement=None, max_metric_drop=None)


def exported(run: Path, folder: Path, fmt: str, quantize: str | None = None, gate: Gate | None = None) -> Path:
    # As the autouse fixture sets for each test, for the module-wide exports below.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("TUNESMITH_CACHE", str(folder.parent / "cache"))
        return export_run(run, fmt, quantize, folder, gate=gate).path


@pytest.fixture(scope="module")
def onnx_export(trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return exported(trained_run, tmp_path_factory.mktemp("exports") / "onnx", "onnx")


def assert_same_predictions(first: list[dict], second: list[dict], tolerance: float) -> None:
    for ours, theirs in zip(first, second, strict=True):
        assert ours["label"] == theirs["label"]
        for name, probability in ours["probabilities"].items():
            assert theirs["probabilities"][name] == pytest.approx(probability, abs=tolerance)


def test_an_onnx_export_predicts_as_the_run_within_the_gate(trained_run: Path, onnx_export: Path) -> None:
    parity = json.loads((onnx_export / "parity.json").read_text())
    assert parity["passed"] and parity["examples"] > 0
    assert parity["max_abs_logit_diff"] <= 1e-4
    assert parity["agreement"] == 1.0
    assert parity["metric_after"] == pytest.approx(parity["metric_before"])
    for backend in ("pytorch", "export"):
        for size in ("batch_1", "batch_32"):
            figures = parity["timing"][backend][size]
            assert figures["texts_per_s"] > 0 and 0 < figures["p50_ms"] <= figures["p95_ms"]
    run, export = tunesmith.load(trained_run), tunesmith.load(onnx_export)
    assert isinstance(export.model, OnnxModel)
    for batch in (TEXTS[:1], TEXTS[2:3], TEXTS):
        assert_same_predictions(run.predict(batch), export.predict(batch), 1e-5)


def test_the_onnx_graph_has_free_batch_and_sequence_axes(onnx_export: Path) -> None:
    import onnx

    graph = onnx.load(str(onnx_export / "model" / "model.onnx")).graph
    manifest = json.loads((onnx_export / "export.json").read_text())
    assert [item.name for item in graph.input] == manifest["inputs"]
    for item in graph.input:
        assert [dim.dim_param for dim in item.type.tensor_type.shape.dim] == ["batch", "sequence"]
    assert [dim.dim_param for dim in graph.output[0].type.tensor_type.shape.dim][0] == "batch"


def test_the_export_carries_what_predicting_needs(trained_run: Path, onnx_export: Path) -> None:
    names = {path.name for path in onnx_export.iterdir()}
    assert {"export.json", "parity.json", "config.yaml", "task.json", "labels.json", "model"} == names
    labels = json.loads((trained_run / "labels.json").read_text())
    assert json.loads((onnx_export / "labels.json").read_text()) == labels
    assert {"model.onnx", "config.json", "tokenizer.json"} <= {path.name for path in (onnx_export / "model").iterdir()}


def test_int8_quantizes_the_dense_layers_and_keeps_the_embeddings_float(trained_run: Path, tmp_path: Path) -> None:
    import onnx

    path = exported(trained_run, tmp_path / "int8", "onnx", "int8", gate=NO_GATE)
    graph = onnx.load(str(path / "model" / "model.onnx")).graph
    ops = Counter(node.op_type for node in graph.node)
    # The tiny BERT: 2 layers of 6 dense matmuls (query, key, value, output, 2 feed-forward).
    assert ops["MatMulInteger"] == 12 and ops["DynamicQuantizeLinear"] > 0
    embeddings = [item for item in graph.initializer if "word_embeddings" in item.name]
    assert embeddings and all(item.data_type == onnx.TensorProto.FLOAT for item in embeddings)
    # The pooler and the classifier stay float.
    head = [node.op_type for node in graph.node if "/classifier/" in node.name or "/pooler/dense" in node.name]
    assert head and "MatMulInteger" not in head
    manifest = json.loads((path / "export.json").read_text())
    assert manifest["quantize"] == "int8" and manifest["format"] == "onnx"


def test_a_failed_gate_exits_1_and_leaves_nothing_that_looks_finished(
    trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    parent = tmp_path / "exports"
    parent.mkdir()
    (parent / "notes.txt").write_text("mine")
    output = parent / "int8"
    args = ["export", str(trained_run), "--format", "onnx", "--quantize", "int8", "--output", str(output)]
    assert main([*args, "--max-logit-diff", "0"]) == 1
    error = capsys.readouterr().err
    assert "parity gate" in error and "--max-logit-diff" in error
    assert sorted(path.name for path in parent.iterdir()) == ["notes.txt"]
    assert (parent / "notes.txt").read_text() == "mine"


def test_a_failed_gate_leaves_the_earlier_export_in_place(trained_run: Path, tmp_path: Path) -> None:
    output = exported(trained_run, tmp_path / "export", "onnx")
    before = (output / "export.json").read_text()
    with pytest.raises(GateFailed):
        export_run(trained_run, "onnx", "int8", output, overwrite=True, gate=Gate(0.0, None, None))
    assert (output / "export.json").read_text() == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["cache", "export"]


def test_hf_export_of_an_unmerged_lora_run_is_merged_for_plain_transformers(
    tiny_model: str, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    from transformers import AutoModelForSequenceClassification

    run = train_once(tmp_path_factory, tiny_model, strategy="lora", lora={"merge": False})
    assert not (run / "model").exists()
    path = exported(run, tmp_path / "hf", "hf")
    model = AutoModelForSequenceClassification.from_pretrained(path / "model")
    assert not any("lora" in name for name, _ in model.named_parameters())
    assert json.loads((path / "parity.json").read_text())["max_abs_logit_diff"] <= 1e-4
    assert_same_predictions(tunesmith.load(run).predict(TEXTS), tunesmith.load(path).predict(TEXTS), 1e-5)


def test_evaluate_and_predict_run_an_onnx_export(
    trained_run: Path, onnx_export: Path, sentiment_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    scores = tmp_path / "scores.json"
    assert main(["evaluate", str(onnx_export), "--data", str(sentiment_csv), "--output", str(scores)]) == 0
    expected = tunesmith.load(trained_run).evaluate(sentiment_csv)
    assert json.loads(scores.read_text())["accuracy"] == pytest.approx(expected["accuracy"])
    capsys.readouterr()
    assert main(["predict", str(onnx_export), "--text", TEXTS[0]]) == 0
    label = tunesmith.load(trained_run).predict(TEXTS[:1])[0]["label"]
    assert capsys.readouterr().out.startswith(label + "\t")


@pytest.mark.slow
def test_a_tagger_exports_with_a_free_sequence_axis_on_its_output(tiny_model: str, tmp_path: Path) -> None:
    conll = write_conll(tmp_path / "ner.conll", ner_sentences(60))
    run = tunesmith.finetune(
        {
            "model": tiny_model,
            "task": "ner",
            "output_dir": str(tmp_path / "run"),
            "data": {"train": str(conll)},
            "training": {"epochs": 2, "batch_size": 8, "learning_rate": 5e-3, "warmup_ratio": 0.0},
        }
    ).path
    path = exported(run, tmp_path / "onnx", "onnx")
    parity = json.loads((path / "parity.json").read_text())
    assert parity["max_abs_logit_diff"] <= 1e-4 and parity["agreement"] == 1.0
    import onnx

    output = onnx.load(str(path / "model" / "model.onnx")).graph.output[0]
    assert [dim.dim_param for dim in output.type.tensor_type.shape.dim][:2] == ["batch", "sequence"]
    texts = ["yesterday john smith visited paris", "mary left new york", "then anna left rome"]
    for ours, theirs in zip(tunesmith.load(run).predict(texts), tunesmith.load(path).predict(texts), strict=True):
        assert ours["entities"], "the tagger found nothing to compare"
        assert [{**e, "score": 0} for e in ours["entities"]] == [{**e, "score": 0} for e in theirs["entities"]]
        assert [e["score"] for e in ours["entities"]] == pytest.approx([e["score"] for e in theirs["entities"]])


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--format", "hf", "--quantize", "int8"], "--quantize int8 applies to --format onnx only"),
        (["--format", "onnx", "--parity-examples", "0"], "at least 1 example"),
        (["--format", "onnx", "--data", "missing.csv"], "missing.csv"),
    ],
)
def test_bad_export_requests_exit_2_before_any_work(
    trained_run: Path, arguments: list[str], message: str, capsys: pytest.CaptureFixture
) -> None:
    assert main(["export", str(trained_run), *arguments]) == 2
    assert message in capsys.readouterr().err


def test_an_unfinished_run_an_export_and_a_foreign_folder_are_refused(
    onnx_export: Path, trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["export", str(tmp_path / "empty"), "--format", "onnx"]) == 2
    assert "not a finished run folder" in capsys.readouterr().err
    assert main(["export", str(onnx_export), "--format", "onnx"]) == 2
    assert "already an export" in capsys.readouterr().err
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("keep me")
    assert main(["export", str(trained_run), "--format", "onnx", "--output", str(foreign), "--overwrite"]) == 2
    assert "thesis.tex" in capsys.readouterr().err
    assert (foreign / "thesis.tex").read_text() == "keep me"
