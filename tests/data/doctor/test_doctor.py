"""The doctor finds each problem planted in a small made-up set, and nothing in a clean one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import write_conll
from tests.data.doctor.helpers import checks, clean_rows, config, doctor, write_csv, write_jsonl
from tunesmith.data.doctor import render


@pytest.fixture(scope="module")
def tokenizer(tiny_model: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


def three_splits(folder: Path, train: list, validation: list, test: list) -> dict:
    return {
        "train": str(write_csv(folder / "train.csv", train)),
        "validation": str(write_csv(folder / "dev.csv", validation)),
        "test": str(write_csv(folder / "test.csv", test)),
    }


def test_a_clean_set_gives_no_finding(tmp_path: Path, tokenizer) -> None:
    data = three_splits(tmp_path, clean_rows(60), clean_rows(20, offset=100), clean_rows(20, offset=200))
    report = doctor(config(data=data), tokenizer)
    assert report.findings == []
    assert report.rows == {"train": 60, "validation": 20, "test": 20}
    assert report.statistics["labels"]["train"] == {"neg": 30, "pos": 30}
    lengths = report.statistics["token_lengths"]["train"]
    assert lengths["cut"] == 0 and lengths["measured_rows"] == 60 and 5 < lengths["p50"] < 30
    assert "No problems found." in render.table(report)


def test_duplicates_and_conflicting_labels_are_found_with_their_lines(tmp_path: Path) -> None:
    train = clean_rows(40)
    train += [
        train[0],
        train[1],
        (train[2][0] + "  ", train[2][1]),
        (train[3][0], "neg" if train[3][1] == "pos" else "pos"),
    ]
    data = three_splits(tmp_path, train, clean_rows(10, offset=100), clean_rows(10, offset=200))
    report = doctor(config(data=data))
    # Trailing whitespace does not make another input: row 3's copy counts.
    assert checks(report) == {("duplicates", "train"): 4, ("conflicting_labels", "train"): 1}
    conflict = next(f for f in report.findings if f.check == "conflicting_labels")
    assert conflict.severity == "warning"
    # Lines of the file: header is line 1, so row 3 is line 5 and its copy (row 43) line 45.
    assert conflict.examples[0]["lines"] == [5, 45] and sorted(conflict.examples[0]["labels"]) == ["neg", "pos"]


def test_overlap_between_splits_exact_and_after_normalisation(tmp_path: Path) -> None:
    train = clean_rows(40)
    test = clean_rows(10, offset=200) + [train[5], (train[6][0].upper().replace(",", " ;"), train[6][1])]
    validation = clean_rows(10, offset=100) + [(train[7][0], "neg" if train[7][1] == "pos" else "pos")]
    report = doctor(config(data=three_splits(tmp_path, train, validation, test)))
    found = checks(report)
    assert found == {
        ("split_overlap", "test/train"): 1,
        ("near_duplicate_overlap", "test/train"): 1,
        ("split_overlap", "validation/train"): 1,
    }
    overlap = next(f for f in report.findings if f.split == "validation/train")
    assert "1 with another label" in overlap.message.replace("1 of them with", "1 with")
    near = next(f for f in report.findings if f.check == "near_duplicate_overlap")
    assert near.examples[0]["train_text"] == train[6][0]


def test_a_short_phrase_is_no_near_duplicate_of_another(tmp_path: Path) -> None:
    train = clean_rows(40) + [("ok", "neg")]
    test = clean_rows(10, offset=200) + [("Ok !", "neg")]
    report = doctor(config(data=three_splits(tmp_path, train, clean_rows(10, offset=100), test)))
    assert ("near_duplicate_overlap", "test/train") not in checks(report)
    assert checks(report) == {("short_texts", "train"): 1}


def test_imbalance_unseen_labels_and_label_shift(tmp_path: Path) -> None:
    train = [(text, "pos") for text, _ in clean_rows(44)] + [(text, "neg") for text, _ in clean_rows(4, offset=50)]
    validation = [(text, "neg") for text, _ in clean_rows(10, offset=100)]
    test = clean_rows(10, offset=200) + [("a perfectly neutral sentence about nothing", "neutral")]
    report = doctor(config(data=three_splits(tmp_path, train, validation, test)))
    found = checks(report)
    assert found[("class_imbalance", "train")] == 1
    assert found[("unseen_labels", "test/train")] == 1
    assert found[("label_shift", "validation/train")] == 92  # 92% pos in train, none in validation
    unseen = next(f for f in report.findings if f.check == "unseen_labels")
    assert unseen.severity == "error" and "neutral" in unseen.message and unseen.examples[0]["line"] == 12


def test_texts_cut_at_max_length_are_counted(tmp_path: Path, tokenizer) -> None:
    long = " ".join(["remarkably"] * 40)
    train = clean_rows(40) + [(long, "pos"), (long + " indeed", "neg")]
    cfg = config(data=three_splits(tmp_path, train, clean_rows(10, offset=100), clean_rows(10, offset=200)))
    cfg = cfg.model_copy(update={"training": cfg.training.model_copy(update={"max_length": 32})})
    report = doctor(cfg, tokenizer)
    assert checks(report) == {("truncated", "train"): 2}
    assert report.statistics["token_lengths"]["train"]["cut"] == 2
    assert report.statistics["token_lengths"]["train"]["max"] == 43  # 41 words, [CLS] and [SEP]


def test_pairs_repeated_with_the_sides_swapped(tmp_path: Path) -> None:
    header = ("first", "second", "label")
    rows = [(a, b, label) for (a, label), (b, _) in zip(clean_rows(30), clean_rows(30, offset=300), strict=True)]
    train = [*rows, (rows[0][1], rows[0][0], rows[0][2])]
    test = [
        (a, b, label) for (a, label), (b, _) in zip(clean_rows(8, offset=500), clean_rows(8, offset=600), strict=True)
    ]
    test.append((rows[1][1], rows[1][0], rows[1][2]))
    data = {
        "train": str(write_csv(tmp_path / "train.csv", train, header)),
        "test": str(write_csv(tmp_path / "test.csv", test, header)),
        "validation_split": 0,
        "text_column": "first",
        "text_pair_column": "second",
    }
    assert checks(doctor(config(data=data))) == {("swapped_pairs", "train"): 1, ("swapped_pairs", "test/train"): 1}


def test_multilabel_rows_with_different_label_sets(tmp_path: Path) -> None:
    train = [(text, "joy,love" if i % 2 else "anger") for i, (text, _) in enumerate(clean_rows(30))]
    train.append((train[1][0], "love,joy"))  # the same set, written in another order: no conflict
    train.append((train[3][0], "joy"))
    data = {"train": str(write_csv(tmp_path / "train.csv", train)), "validation_split": 0, "test_split": 0}
    report = doctor(config(task="multilabel", data=data))
    assert checks(report) == {("duplicates", "train"): 2, ("conflicting_labels", "train"): 1}
    assert report.statistics["labels"]["train"] == {"joy": 17, "love": 16, "anger": 15}


def test_invalid_ner_tags_and_a_clean_ner_set(tmp_path: Path) -> None:
    sentences = [
        (
            ["then", "john", "smith", "visited", "paris", "again", str(i)],
            ["O", "B-PER", "I-PER", "O", "B-LOC", "O", "O"],
        )
        for i in range(20)
    ]
    clean = {"train": str(write_conll(tmp_path / "clean.txt", sentences)), "validation_split": 0, "test_split": 0}
    assert doctor(config(task="ner", data=clean)).findings == []
    broken = [
        *sentences[:19],
        (["we", "met", "mary", "in", "rome", "today", "19"], ["O", "O", "I-PER", "O", "B-LOC", "I-ORG", "O"]),
    ]
    data = {"train": str(write_conll(tmp_path / "broken.txt", broken)), "validation_split": 0, "test_split": 0}
    report = doctor(config(task="ner", data=data))
    # The one ORG entity (an I-ORG after B-LOC, read as an entity) is also 20 times rarer than PER.
    assert checks(report) == {("invalid_tags", "train"): 2, ("class_imbalance", "train"): 1}
    first = next(f for f in report.findings if f.check == "invalid_tags").examples[0]
    assert (first["text"], first["tag"], first["after"], first["token_number"]) == ("mary", "I-PER", "O", 3)
    assert report.statistics["labels"]["train"] == {"PER": 20, "LOC": 20, "ORG": 1}


def test_the_markdown_and_json_carry_every_finding(tmp_path: Path) -> None:
    train = clean_rows(30)
    train += [(train[0][0], "neg" if train[0][1] == "pos" else "pos"), ("a | pipe", "pos")]
    data = three_splits(tmp_path, train, clean_rows(5, offset=100), clean_rows(5, offset=200))
    report = doctor(config(data=data))
    saved = json.loads(render.to_json(report))
    assert {(f["check"], f["split"], f["count"]) for f in saved["findings"]} == {
        ("duplicates", "train", 1),
        ("conflicting_labels", "train", 1),
    }
    text = render.markdown(report)
    assert "| warning | conflicting_labels | train | 1 |" in text and "## conflicting_labels (train)" in text
    assert "a \\| pipe" not in text  # not an example of any finding; the table cells are escaped where they are
    lines = render.table(report).splitlines()
    assert lines[0].startswith("Data doctor: planted (classification; rows: train 32")
    assert lines[-1] == "1 warning, 1 info."


def test_a_jsonl_set_reads_alike(tmp_path: Path) -> None:
    rows = [{"text": text, "label": label} for text, label in clean_rows(30)]
    rows.append(dict(rows[0]))
    data = {"train": str(write_jsonl(tmp_path / "train.jsonl", rows)), "validation_split": 0, "test_split": 0}
    assert checks(doctor(config(data=data))) == {("duplicates", "train"): 1}
