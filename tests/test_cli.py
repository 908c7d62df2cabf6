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
            {"t.csv": "text,label\n" + GOOD_ROWS + "\u200b\u200b,pos\n"},
            ["--data", "{tmp}/t.csv"],
            ["t.csv, line 22", "the text is only invisible characters (U+200B ZERO WIDTH SPACE)"],
        ),
        (
            # Visible, but the uncased tokenizer strips accents: a lone combining accent gives no token.
            {"t.csv": "text,label\n" + GOOD_ROWS + "\u0301,pos\n"},
            ["--data", "{tmp}/t.csv"],
            ['t.csv, line 22, column "text": the text', "gives no token", "Remove the row"],
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
        "zero-width-text",
        "text-without-tokens",
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


@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "demo", "doctor", "runs", "report", "explain"])
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
    assert set(metrics) == {"validation", "test", "training", "baselines"}
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
    # The file's own label column is kept beside the prediction, renamed so that neither hides the other.
    assert len(rows) == 80 and list(rows[0]) == ["text", "input_label", "label", "score", "p_neg", "p_pos"]

    code, out, _ = run_cli(capsys, "evaluate", run_dir, "--data", sentiment_csv, "--output", tmp_path / "eval.json")
    assert code == 0 and "accuracy" in out
    evaluation = json.loads((tmp_path / "eval.json").read_text())
    with open(sentiment_csv, newline="") as handle:
        gold = [row["label"] for row in csv.DictReader(handle)]
    assert [row["input_label"] for row in rows] == gold
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
    retrain = ["train", "--data", sentiment_csv, "--model", tiny_model, "--epochs", "1", "--output-dir", run_dir]
    code, _, err = run_cli(capsys, *retrain)
    assert_user_error(code, err, "already holds a finished run", "--overwrite")
    assert json.loads((run_dir / "status.json").read_text())["status"] == "finished"
    # --overwrite replaces only a run folder that holds nothing but what tunesmith wrote there.
    write(run_dir / "notes.txt", "mine")
    before = snapshot(run_dir)
    code, _, err = run_cli(capsys, *retrain, "--overwrite")
    assert_user_error(code, err, "holds a finished tunesmith run, but also 'notes.txt'", "move those out")
    assert snapshot(run_dir) == before
    (run_dir / "notes.txt").unlink()
    stamp = (run_dir / "model" / "model.safetensors").stat().st_mtime_ns
    code, _, err = run_cli(capsys, *retrain, "--overwrite")
    assert code == 0, err
    assert (run_dir / "model" / "model.safetensors").stat().st_mtime_ns != stamp


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` and its bytes: what must come through a refusal unchanged."""
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def fake_run(folder: Path, name: str) -> Path:
    """A finished run folder as tunesmith leaves it, without the minutes of training one."""
    from tunesmith.runs import RunFolder

    run = RunFolder.create(folder)
    run.write_yaml("config.yaml", {"name": name, "data": {"train": "train.csv"}})
    (folder / "model").mkdir()
    write(folder / "model" / "model.safetensors", b"weights")
    run.set_status("finished")
    return folder


@pytest.mark.parametrize("flags", [[], ["--overwrite"]], ids=["plain", "overwrite"])
def test_train_refuses_a_folder_it_did_not_write_and_keeps_every_file(
    capsys: pytest.CaptureFixture, tmp_path: Path, sentiment_csv: Path, flags: list[str]
) -> None:
    # The reproduction: the data and the user's notes in the output folder, and --overwrite.
    folder = tmp_path / "d"
    folder.mkdir()
    data = write(folder / "train.csv", sentiment_csv.read_bytes())
    write(folder / "notes.txt", "x\n")
    before = snapshot(folder)
    code, _, err = run_cli(capsys, "train", "--data", data, "--output-dir", folder, *flags, "--epochs", "1")
    assert_user_error(
        code,
        err,
        f"Output folder {folder} is not empty and is not a tunesmith run folder: it holds 'notes.txt', 'train.csv'",
        "choose another --output-dir",
    )
    assert snapshot(folder) == before


def test_overwrite_never_empties_a_home_folder(
    capsys: pytest.CaptureFixture, tmp_path: Path, sentiment_csv: Path
) -> None:
    home = tmp_path / "home"
    (home / "Documents").mkdir(parents=True)
    write(home / ".bashrc", "export PATH\n")
    write(home / "Documents" / "cv.pdf", b"%PDF")
    before = snapshot(home)
    code, _, err = run_cli(capsys, "train", "--data", sentiment_csv, "--output-dir", home, "--overwrite")
    assert_user_error(code, err, "it holds '.bashrc', 'Documents'")
    assert snapshot(home) == before


@pytest.mark.parametrize("name", ["../../x", "/etc", "..", "a/b"])
def test_a_run_name_with_path_parts_exits_2_and_writes_nothing(
    capsys: pytest.CaptureFixture, tmp_path: Path, sentiment_csv: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    code, _, err = run_cli(capsys, "train", "--data", sentiment_csv, "--name", name, "--overwrite")
    assert_user_error(code, err, 'Invalid config in the command line: "name":', "--output-dir")
    assert list(work.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "sentiment.csv"]


def test_demo_refuses_a_folder_that_is_not_its_own_earlier_run(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    write(mine / "notes.txt", "mine")
    code, _, err = run_cli(capsys, "demo", "--output-dir", mine)
    assert_user_error(code, err, "is not a tunesmith run folder: it holds 'notes.txt'", "choose another --output-dir")
    assert snapshot(mine) == {"notes.txt": b"mine"}
    # A run of train's is not demo's to replace either, although it is tunesmith's.
    other = fake_run(tmp_path / "other", "sst2-train")
    before = snapshot(other)
    code, _, err = run_cli(capsys, "demo", "--output-dir", other)
    assert_user_error(code, err, "`tunesmith demo` did not write (named 'sst2-train')", "choose another --output-dir")
    assert snapshot(other) == before


def test_demo_replaces_its_own_earlier_run(tmp_path: Path) -> None:
    from tunesmith.cli import _check_demo_folder

    _check_demo_folder(fake_run(tmp_path / "demo", "demo"))  # no error: demo goes on to replace it
    _check_demo_folder(tmp_path / "new")


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
    # A pair run given single texts would read them as pairs with an empty second text.
    code, _, err = run_cli(capsys, "predict", run_dir, "--text", "the good film")
    assert_user_error(code, err, 'trained on sentence pairs (data.text_pair_column "second")', "--text-pair")
    singles = write(tmp_path / "singles.csv", "first\nthe good film\n")
    code, _, err = run_cli(capsys, "predict", run_dir, "--input", singles)
    assert_user_error(code, err, 'singles.csv: no column "second"', "trained on sentence pairs")
    both = write(tmp_path / "both.csv", "key,first,second\nk1,the good film,a good movie\nk2,the dull film,the plot\n")
    code, out, err = run_cli(capsys, "predict", run_dir, "--input", both)
    assert code == 0, err
    written = [json.loads(line) for line in out.splitlines()]
    assert [(row["key"], row["second"]) for row in written] == [("k1", "a good movie"), ("k2", "the plot")]
    code, out, err = run_cli(capsys, "predict", run_dir, "--text", "the good film", "--text-pair", "a good movie")
    assert code == 0, err
    assert out.split("\t")[0] == written[0]["label"]


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


def test_notices_go_to_stderr_as_it_is_now_not_as_it_was(monkeypatch: pytest.MonkeyPatch) -> None:
    # A handler holding the stderr of its creation writes "--- Logging error ---" once a caller
    # (a test's capture, a notebook) has swapped that stream out and closed it.
    import io
    import logging

    from tunesmith import cli

    logger = logging.getLogger("tunesmith")
    monkeypatch.setattr(logger, "handlers", [])
    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    cli._route_notices()
    first.close()
    monkeypatch.setattr(sys, "stderr", second)
    logging.getLogger("tunesmith.runs").warning("Skipping checkpoint step-3")
    assert second.getvalue() == "Skipping checkpoint step-3\n"


ID_TEXTS = 'id,text,source\n17,a wonderful one,web\n3,so boring,mail\n42,"great, truly",web\n8,awful thing,web\n'


def test_predict_writes_one_row_per_input_row_in_order_with_its_columns_and_probabilities(
    capsys: pytest.CaptureFixture, tmp_path: Path, trained_run: Path
) -> None:
    import tunesmith

    source = write(tmp_path / "in.csv", ID_TEXTS)
    texts = ["a wonderful one", "so boring", "great, truly", "awful thing"]
    expected = tunesmith.load(trained_run).predict(texts)

    code, _, err = run_cli(capsys, "predict", trained_run, "--input", source, "--output", tmp_path / "out.csv")
    assert code == 0, err
    with open(tmp_path / "out.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["id", "text", "source", "label", "score", "p_neg", "p_pos"]
    assert [(row["id"], row["text"], row["source"]) for row in rows] == [
        ("17", texts[0], "web"),
        ("3", texts[1], "mail"),
        ("42", texts[2], "web"),
        ("8", texts[3], "web"),
    ]
    for row, result in zip(rows, expected, strict=True):
        assert row["label"] == result["label"]
        assert [float(row["p_neg"]), float(row["p_pos"])] == pytest.approx(
            [result["probabilities"]["neg"], result["probabilities"]["pos"]], abs=1e-5
        )
        assert float(row[f"p_{row['label']}"]) == pytest.approx(float(row["score"]))

    # JSON lines, to a file or to stdout: the same rows, with the probabilities as an object.
    code, out, err = run_cli(capsys, "predict", trained_run, "--input", source)
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["id"] for line in lines] == ["17", "3", "42", "8"]
    assert [line["label"] for line in lines] == [result["label"] for result in expected]
    assert set(lines[0]) == {"id", "text", "source", "label", "score", "probabilities"}
    code, _, err = run_cli(capsys, "predict", trained_run, "--input", source, "--output", tmp_path / "out.jsonl")
    assert code == 0, err
    assert (tmp_path / "out.jsonl").read_text() == out


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        ("text\ngreat\n\nawful\n", ["in.csv, line 3", "the text is empty", "skips none"]),
        ("id,text\n1,great\n2,\n3,\u200b\n", ["in.csv, line 3", "(1 more line has no text either: 4)"]),
    ],
    ids=["blank-line", "empty-and-zero-width"],
)
def test_predict_refuses_a_row_without_text_and_writes_nothing(
    capsys: pytest.CaptureFixture, tmp_path: Path, trained_run: Path, content: str, fragments: list[str]
) -> None:
    # Skipping the row would shift every later prediction onto the wrong row (4 rows in, 2 out).
    source = write(tmp_path / "in.csv", content)
    output = tmp_path / "out.csv"
    code, _, err = run_cli(capsys, "predict", trained_run, "--input", source, "--output", output)
    assert_user_error(code, err, *fragments)
    assert not output.exists()


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["--text", ""], ["--text number 1 ('') is empty", "nothing to read"]),
        (["--text", "fine", "--text", " \t"], ["--text number 2", "is empty"]),
        (["--text", "\u200b"], ["is only invisible characters (U+200B ZERO WIDTH SPACE)"]),
        (["--text", "a film", "--text-pair", "a movie"], ["trained on single texts", "without --text-pair"]),
    ],
    ids=["empty", "whitespace", "zero-width", "pair-for-single-text-run"],
)
def test_predict_refuses_texts_it_cannot_answer_for(
    capsys: pytest.CaptureFixture, trained_run: Path, argv: list[str], fragments: list[str]
) -> None:
    code, out, err = run_cli(capsys, "predict", trained_run, *argv)
    assert_user_error(code, err, *fragments)
    assert out == ""


def link(kind: str, target: Path, path: Path) -> Path:
    if kind == "symlink":
        path.symlink_to(target)
    elif kind == "hard link":
        path.hardlink_to(target)
    return path


@pytest.mark.parametrize("command", ["predict", "evaluate"])
@pytest.mark.parametrize("via", ["same path", "other spelling", "symlink", "hard link"])
def test_the_input_file_is_never_the_output(
    capsys: pytest.CaptureFixture, tmp_path: Path, trained_run: Path, command: str, via: str
) -> None:
    source = write(tmp_path / "data.csv", "text,label\na wonderful one,pos\nso boring,neg\n")
    (tmp_path / "sub").mkdir()
    output = {
        "same path": source,
        "other spelling": tmp_path / "sub" / ".." / "data.csv",
        "symlink": tmp_path / "alias.csv",
        "hard link": tmp_path / "twin.csv",
    }[via]
    link(via, source, output)
    flag = "--input" if command == "predict" else "--data"
    code, _, err = run_cli(capsys, command, trained_run, flag, source, "--output", output)
    assert_user_error(code, err, f"--output {output} is the {flag} file {source}", "new file name")
    assert source.read_text() == "text,label\na wonderful one,pos\nso boring,neg\n"


def test_the_output_never_replaces_a_file_of_the_run_and_its_folder_must_exist(
    capsys: pytest.CaptureFixture, tmp_path: Path, trained_run: Path
) -> None:
    metrics = (trained_run / "metrics.json").read_text()
    source = write(tmp_path / "data.csv", "text,label\na wonderful one,pos\nso boring,neg\n")
    for command, flag in (("predict", "--input"), ("evaluate", "--data")):
        code, _, err = run_cli(capsys, command, trained_run, flag, source, "--output", trained_run / "metrics.json")
        assert_user_error(code, err, "is a file of the run folder")
        code, _, err = run_cli(capsys, command, trained_run, flag, source, "--output", tmp_path / "no" / "out.csv")
        assert_user_error(code, err, f"the folder {tmp_path / 'no'} does not exist")
    assert (trained_run / "metrics.json").read_text() == metrics
    code, _, err = run_cli(capsys, "evaluate", trained_run, "--data", source, "--output", tmp_path / "eval.json")
    assert code == 0, err
    assert json.loads((tmp_path / "eval.json").read_text())["accuracy"] in {0.0, 0.5, 1.0}
    assert sorted(path.name for path in tmp_path.iterdir()) == ["data.csv", "eval.json"]


@pytest.mark.slow
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
