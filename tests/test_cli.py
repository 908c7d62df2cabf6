"""The command line: bad input gives exit code 2 and one clear paragraph; good input a run."""

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import write_sentiment_csv
from tunesmith.cli import main


def run_cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_user_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    assert err.startswith("error: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err


def write(path: Path, data: bytes | str) -> Path:
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


GOOD_ROWS = "".join(f"{'great' if i % 2 else 'awful'} thing {i},{'pos' if i % 2 else 'neg'}\n" for i in range(20))


@pytest.mark.parametrize(
    ("files", "extra", "fragments"),
    [
        ({}, ["--data", "{tmp}/missing.csv"], ["missing.csv: file not found"]),
        (
            {"t.csv": "text,label\n" + GOOD_ROWS},
            ["--data", "{tmp}/t.csv", "--text-column", "sentence"],
            ['no column "sentence"', "Columns found: 'text', 'label'"],
        ),
        (
            {"t.csv": "text,label\n" + GOOD_ROWS + "   ,pos\n"},
            ["--data", "{tmp}/t.csv"],
            ["t.csv, line 22", "the text is empty"],
        ),
        (
            {"t.csv": "text,label\n" + GOOD_ROWS, "v.csv": "text,label\nfine,pos\nmeh,neutral\n"},
            ["--data", "{tmp}/t.csv", "--validation", "{tmp}/v.csv"],
            ["v.csv, line 3", "label 'neutral' never appears in the training data", "neg, pos"],
        ),
        (
            {"t.csv": b"text,label\n" + GOOD_ROWS.encode() + b"na\xefve,pos\n"},
            ["--data", "{tmp}/t.csv"],
            ["t.csv, line 22", "not valid UTF-8", "iconv"],
        ),
        (
            {"t.tsv": "text\tlabel\n" + GOOD_ROWS.replace(",", "\t") + "a\tb\tc\n"},
            ["--data", "{tmp}/t.tsv"],
            ["t.tsv, line 22: 3 fields, but the header has 2"],
        ),
        (
            {"t.csv": "text,label\n" + GOOD_ROWS},
            ["--data", "{tmp}/t.csv", "--model", "no-such-org/no-such-model"],
            ["Model 'no-such-org/no-such-model' could not be loaded", "--model minilm"],
        ),
        (
            {"t.csv": "text,label\n" + GOOD_ROWS},
            ["--data", "{tmp}/t.csv", "--model", "./models/nowhere"],
            ["Model './models/nowhere': no such folder"],
        ),
        (
            {"c.yaml": "data:\n  train: t.csv\n  text_colum: x\n"},
            ["{tmp}/c.yaml"],
            ['Unknown key "data.text_colum"', 'Did you mean "text_column"?'],
        ),
        ({}, [], ["Nothing to train on"]),
    ],
    ids=[
        "missing-file",
        "missing-column",
        "blank-text",
        "unseen-label",
        "non-utf8",
        "ragged-row",
        "unknown-model",
        "unknown-model-path",
        "misspelt-key",
        "no-data",
    ],
)
def test_bad_input_exits_2_with_a_clear_message_and_writes_nothing(
    capsys: pytest.CaptureFixture, tmp_path: Path, files: dict, extra: list[str], fragments: list[str]
) -> None:
    for name, content in files.items():
        write(tmp_path / name, content)
    output = tmp_path / "out"
    argv = [a.replace("{tmp}", str(tmp_path)) for a in extra]
    code, _, err = run_cli(capsys, "train", *argv, "--output-dir", output)
    assert_user_error(code, err, *fragments)
    assert not output.exists()


def test_real_entry_point_has_no_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tunesmith", "train", "--data", str(tmp_path / "nope.tsv")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "nope.tsv: file not found" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("where", ["after the command", "before the command"])
def test_debug_shows_the_traceback(where: str, tmp_path: Path) -> None:
    from tunesmith.errors import UserError

    train = ["train", "--data", str(tmp_path / "nope.csv")]
    with pytest.raises(UserError):
        main([*train, "--debug"] if where == "after the command" else ["--debug", *train])


@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "demo"])
def test_help_for_every_command(capsys: pytest.CaptureFixture, command: str) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: tunesmith {command}" in out


def test_train_predict_evaluate_round_trip(
    capsys: pytest.CaptureFixture, tmp_path: Path, tiny_model: str, sentiment_csv: Path
) -> None:
    run_dir = tmp_path / "run"
    code, out, err = run_cli(
        capsys,
        "train",
        "--data",
        sentiment_csv,
        "--model",
        tiny_model,
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--output-dir",
        run_dir,
        "training.logging_steps=2",
    )
    assert code == 0, err
    assert "Run finished" in out and "accuracy" in out
    for name in (
        "config.yaml",
        "metrics.json",
        "history.jsonl",
        "labels.json",
        "report.md",
        "status.json",
        "model/config.json",
        "model/model.safetensors",
        "model/tokenizer.json",
    ):
        assert (run_dir / name).exists(), name
    assert json.loads((run_dir / "status.json").read_text())["status"] == "finished"
    assert json.loads((run_dir / "labels.json").read_text()) == ["neg", "pos"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics) == {"validation", "test", "training"}
    assert metrics["training"]["examples"] == {"train": 64, "test": 8, "validation": 8}
    assert metrics["training"]["trainable_parameters"] == metrics["training"]["total_parameters"] > 0
    history = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    assert [r["step"] for r in history if "loss" in r and "split" not in r] == [2, 4, 6, 8]

    code, out, _ = run_cli(capsys, "predict", run_dir, "--text", "a wonderful one", "--text", "so boring")
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 2 and lines[0].split("\t")[0] in {"neg", "pos"}

    predictions = tmp_path / "predictions.csv"
    code, _, _ = run_cli(capsys, "predict", run_dir, "--input", sentiment_csv, "--output", predictions)
    assert code == 0
    with open(predictions, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 80 and set(rows[0]) == {"text", "label", "score"}

    code, out, _ = run_cli(capsys, "evaluate", run_dir, "--data", sentiment_csv, "--output", tmp_path / "eval.json")
    assert code == 0 and "accuracy" in out
    evaluation = json.loads((tmp_path / "eval.json").read_text())
    with open(sentiment_csv, newline="") as handle:
        gold = [row["label"] for row in csv.DictReader(handle)]
    agreement = sum(row["label"] == label for row, label in zip(rows, gold, strict=True)) / len(gold)
    assert evaluation["accuracy"] == pytest.approx(agreement)

    # A tab-separated file named .csv: the error names --format, and --format reads it.
    with open(sentiment_csv, newline="") as handle:
        table = list(csv.reader(handle))
    misnamed = write(tmp_path / "tabs.csv", "".join("\t".join(row) + "\n" for row in table))
    code, _, err = run_cli(capsys, "evaluate", run_dir, "--data", misnamed)
    assert_user_error(code, err, "tabs.csv, line 1", "TSV read as CSV", "--format tsv")
    code, _, err = run_cli(
        capsys, "evaluate", run_dir, "--data", misnamed, "--format", "tsv", "--output", tmp_path / "tsv.json"
    )
    assert code == 0, err
    assert json.loads((tmp_path / "tsv.json").read_text())["accuracy"] == evaluation["accuracy"]
    code, _, err = run_cli(capsys, "predict", run_dir, "--input", misnamed, "--output", tmp_path / "p.csv")
    assert_user_error(code, err, "TSV read as CSV", "--format tsv")
    code, _, err = run_cli(
        capsys, "predict", run_dir, "--input", misnamed, "--format", "tsv", "--output", tmp_path / "p.csv"
    )
    assert code == 0, err
    assert (tmp_path / "p.csv").read_text() == predictions.read_text()

    # A second train into the finished folder refuses, and the run is untouched.
    code, _, err = run_cli(capsys, "train", "--data", sentiment_csv, "--model", tiny_model, "--output-dir", run_dir)
    assert_user_error(code, err, "already holds a finished run", "--overwrite")
    assert json.loads((run_dir / "status.json").read_text())["status"] == "finished"


def test_evaluate_and_predict_need_a_finished_run(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "predict", tmp_path, "--text", "hi")
    assert_user_error(code, err, "is not a finished run folder")


# Ten sentences of four lines each (with the blank line): sentence k starts on line 4k + 1.
CONLL_OK = "EU B-ORG\nrejects O\n\nPeter B-PER\nBlackburn I-PER\n\n" * 5
MULTI = ['"anger,joy"', "joy"]
JSONL_OK = '{"tokens": ["EU", "rejects"], "tags": ["B-ORG", "O"]}\n' * 10


@pytest.mark.parametrize(
    ("task", "files", "fragments"),
    [
        ("ner", {"t.conll": CONLL_OK + "Brussels B-LOC\n1996-08-22\n"}, ["t.conll, line 32", "has one field"]),
        (
            "ner",
            {"t.jsonl": JSONL_OK + '{"tokens": ["EU", "rejects"], "tags": ["B-ORG"]}\n'},
            ["t.jsonl, line 11", "has 2 tokens but 1 tags"],
        ),
        ("ner", {"t.conll": CONLL_OK + "Brussels LOCATION\n"}, ["t.conll, line 31", "unknown tag 'LOCATION'"]),
        (
            "ner",
            {"t.jsonl": JSONL_OK + '{"tokens": [], "tags": []}\n'},
            ["t.jsonl, line 11", "an empty sentence"],
        ),
        (
            "multilabel",
            {"t.csv": "text,label\n" + "".join(f"row {i},{MULTI[i % 2]}\n" for i in range(20))},
            [],
        ),
        (
            "regression",
            {"t.csv": "text,label\n" + "".join(f"row {i},{i / 10}\n" for i in range(20)) + "x,nan\n"},
            ["t.csv, line 22", "not a finite number"],
        ),
    ],
    ids=[
        "ner-missing-tag",
        "ner-count-mismatch",
        "ner-unknown-scheme",
        "ner-empty-sentence",
        "multilabel-unknown",
        "regression-nan",
    ],
)
def test_task_specific_bad_input_exits_2(
    capsys: pytest.CaptureFixture, tmp_path: Path, task: str, files: dict, fragments: list[str]
) -> None:
    for name, content in files.items():
        write(tmp_path / name, content)
    train = tmp_path / next(iter(files))
    extra = []
    if task == "multilabel":
        # Validation names a label that the training data never uses.
        extra = ["--validation", write(tmp_path / "v.csv", 'text,label\nfine,joy\nmeh,"joy,fear"\n')]
        fragments = ["v.csv, line 3", "label 'fear' never appears in the training data"]
    output = tmp_path / "out"
    code, _, err = run_cli(capsys, "train", "--task", task, "--data", train, *extra, "--output-dir", output)
    assert_user_error(code, err, *fragments)
    assert not output.exists()


def test_overrides_may_follow_flags_and_unknown_flags_still_fail(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "train", "--data", tmp_path / "t.csv", "training.epochs=2")
    assert_user_error(code, err, "t.csv: file not found")
    with pytest.raises(SystemExit) as exited:
        main(["train", "--data", "t.csv", "--epochz", "2"])
    assert exited.value.code == 2
    assert "unrecognized arguments: --epochz" in capsys.readouterr().err


def test_sentence_pairs_train_and_predict(capsys: pytest.CaptureFixture, tmp_path: Path, tiny_model: str) -> None:
    rows = ["first,second,same"] + [
        f"the {w} film,a {w} movie,1" if i % 2 else f"the {w} film,the plot,0"
        for i, w in enumerate(["great", "awful", "fine", "dull"] * 10)
    ]
    data = write(tmp_path / "pairs.csv", "\n".join(rows) + "\n")
    run_dir = tmp_path / "run"
    code, out, err = run_cli(
        capsys,
        "train",
        "--data",
        data,
        "--text-column",
        "first",
        "--text-pair-column",
        "second",
        "--label-column",
        "same",
        "--model",
        tiny_model,
        "--epochs",
        "1",
        "--output-dir",
        run_dir,
    )
    assert code == 0, err
    assert "f1 " in out  # binary task: F1 of the positive class
    code, out, _ = run_cli(capsys, "predict", run_dir, "--text", "the good film", "--text-pair", "a good movie")
    assert code == 0 and out.split("\t")[0] in {"0", "1"}
    code, _, err = run_cli(capsys, "predict", run_dir, "--text", "a", "--text", "b", "--text-pair", "c")
    assert_user_error(code, err, "2 texts but 1 second texts")


def test_ner_train_predict_evaluate(capsys: pytest.CaptureFixture, tmp_path: Path, tiny_model: str) -> None:
    from tests.conftest import ner_sentences, write_conll

    train = write_conll(tmp_path / "train.conll", ner_sentences(40))
    run_dir = tmp_path / "run"
    code, out, err = run_cli(
        capsys,
        "train",
        "--task",
        "ner",
        "--data",
        train,
        "--model",
        tiny_model,
        "--epochs",
        "1",
        "--output-dir",
        run_dir,
    )
    assert code == 0, err
    assert json.loads((run_dir / "task.json").read_text())["scheme"] == "iob2"
    assert "## Per entity type" in (run_dir / "report.md").read_text()
    code, out, _ = run_cli(capsys, "predict", run_dir, "--text", "then mary left rome")
    assert code == 0 and out.endswith("\tthen mary left rome\n")
    output = tmp_path / "entities.csv"
    texts = write(tmp_path / "texts.csv", "text\nthen anna left paris\n")
    code, _, _ = run_cli(capsys, "predict", run_dir, "--input", texts, "--output", output)
    with open(output, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert code == 0 and set(rows[0]) == {"text", "entities"} and isinstance(json.loads(rows[0]["entities"]), list)
    code, out, _ = run_cli(capsys, "evaluate", run_dir, "--data", train)
    assert code == 0 and "f1" in out and "precision" in out


def test_resume_with_nothing_to_resume_exits_2(
    capsys: pytest.CaptureFixture, tmp_path: Path, sentiment_csv: Path
) -> None:
    assert main(["train", "--data", str(sentiment_csv), "--output-dir", str(tmp_path / "run"), "--resume"]) == 2
    assert "Nothing to resume in" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_run_whose_model_ships_code_is_refused_even_when_the_terminal_says_yes(
    trained_run: Path, tmp_path: Path
) -> None:
    # transformers asked on the terminal whether to run a folder's code (auto_map, no model_type), and
    # `echo y | tunesmith predict RUN --text hi` ran it.
    run = Path(shutil.copytree(trained_run, tmp_path / "run"))
    marker = tmp_path / "code-ran"
    (run / "model" / "custom.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    settings = json.loads((run / "model" / "config.json").read_text())
    del settings["model_type"]
    settings["auto_map"] = {"AutoConfig": "custom.Config", "AutoModelForSequenceClassification": "custom.Model"}
    (run / "model" / "config.json").write_text(json.dumps(settings))
    data = write_sentiment_csv(tmp_path / "data.csv")
    for command in (["predict", str(run), "--text", "hi"], ["evaluate", str(run), "--data", str(data)]):
        done = subprocess.run(
            [sys.executable, "-m", "tunesmith", *command], input="y\n", capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith(f"error: Model {run / 'model'} ships its own Python code"), done.stderr
        assert not marker.exists()


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def pickle_weights(path: Path) -> None:
    path.unlink()
    (path.parent / "pytorch_model.bin").write_bytes(b"\x80\x04K\x01.")  # a pickle of the number 1


@pytest.mark.parametrize(
    ("damage", "fragments"),
    [
        (lambda run: truncate(run / "model" / "model.safetensors"), ["model.safetensors is not a whole safetensors"]),
        (lambda run: (run / "model" / "model.safetensors").write_bytes(b""), ["(0 bytes;", "copy it again"]),
        (lambda run: pickle_weights(run / "model" / "model.safetensors"), ["holds its weights as pytorch_model.bin"]),
        (lambda run: (run / "config.yaml").unlink(), ["config.yaml is missing", "train the run again"]),
        (lambda run: shutil.rmtree(run), ["does not exist"]),
        (
            lambda run: (run / "config.yaml").write_text(
                (run / "config.yaml").read_text().replace("max_length: 128", "max_length: 100000")
            ),
            None,  # an old run's max_length beyond the positions: cut to them, with a notice
        ),
    ],
    ids=["truncated", "empty", "pickle", "no-config", "no-folder", "old-max-length"],
)
@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_a_damaged_run_folder_exits_2_naming_the_file(
    capsys: pytest.CaptureFixture,
    caplog: pytest.LogCaptureFixture,
    run_copy: Path,
    sentiment_csv: Path,
    command: str,
    damage,
    fragments,
) -> None:
    damage(run_copy)
    extra = ["--text", " ".join(["great"] * 500)] if command == "predict" else ["--data", sentiment_csv]
    code, out, err = run_cli(capsys, command, run_copy, *extra)
    if fragments is None:
        assert code == 0, err
        assert "longer than the model's 128 positions (max_position_embeddings); texts are cut" in caplog.text
        return
    assert_user_error(code, err, *fragments)
    assert len(err.strip().splitlines()) == 1
