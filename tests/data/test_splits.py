from collections import Counter
from pathlib import Path

import pytest

from tunesmith.config import DataConfig
from tunesmith.data.splits import blank_text, load_splits, neighbour_words, read_labelled, read_texts
from tunesmith.errors import UserError


def write_csv(tmp_path: Path, rows: list[tuple[str, str]], name: str = "train.csv", header: str = "text,label") -> Path:
    path = tmp_path / name
    path.write_text(header + "\n" + "".join(f"{text},{label}\n" for text, label in rows))
    return path


def balanced_rows(per_label: int = 50) -> list[tuple[str, str]]:
    return [(f"example {label} {i}", label) for label in ("a", "b", "c", "d") for i in range(per_label)]


def test_only_train_is_split_stratified_and_seeded(tmp_path: Path) -> None:
    cfg = DataConfig(train=write_csv(tmp_path, balanced_rows()))
    loaded = load_splits(cfg, seed=1)
    sizes = {name: len(split) for name, split in loaded.splits.items()}
    assert sizes == {"train": 160, "test": 20, "validation": 20}
    for name in ("validation", "test"):
        assert Counter(loaded.splits[name]["label"]) == {"a": 5, "b": 5, "c": 5, "d": 5}
    assert load_splits(cfg, seed=1).splits["test"]["text"] == loaded.splits["test"]["text"]
    assert load_splits(cfg, seed=2).splits["test"]["text"] != loaded.splits["test"]["text"]
    seen = [text for split in loaded.splits.values() for text in split["text"]]
    assert len(seen) == len(set(seen)) == 200  # the splits are disjoint and cover everything


def test_given_files_are_not_carved(tmp_path: Path) -> None:
    train = write_csv(tmp_path, balanced_rows())
    dev = write_csv(tmp_path, [("dev text", "a")], "dev.csv")
    cfg = DataConfig(train=train, validation=dev, test_split=0.0)
    loaded = load_splits(cfg, seed=0)
    assert set(loaded.splits) == {"train", "validation"}
    assert len(loaded.splits["train"]) == 200
    assert loaded.sources["validation"] == dev


def test_max_train_rows_takes_a_seeded_subset(tmp_path: Path) -> None:
    cfg = DataConfig(train=write_csv(tmp_path, balanced_rows()), max_train_rows=40, validation_split=0, test_split=0)
    first = load_splits(cfg, seed=3).splits["train"]
    assert len(first) == 40
    assert first["text"] == load_splits(cfg, seed=3).splits["train"]["text"]


def test_source_lines_travel_with_the_rows(tmp_path: Path) -> None:
    cfg = DataConfig(train=write_csv(tmp_path, balanced_rows(5)), validation_split=0, test_split=0)
    train = load_splits(cfg, seed=0).splits["train"]
    assert train["line"] == list(range(2, 22))


def test_missing_column_lists_the_columns_found(tmp_path: Path) -> None:
    path = write_csv(tmp_path, [("x", "a")], header="sentence,label")
    with pytest.raises(UserError) as error:
        load_splits(DataConfig(train=path), seed=0)
    message = str(error.value)
    assert 'no column "text"' in message and "'sentence', 'label'" in message and "--text-column" in message


def test_a_file_scored_against_a_run_is_told_to_match_the_runs_columns(tmp_path: Path) -> None:
    # `evaluate` has no column options: the run's settings are fixed, so the file must change.
    path = write_csv(tmp_path, [("x", "a")], name="dev.csv", header="text,gold")
    cfg = DataConfig(train=tmp_path / "train.csv")
    with pytest.raises(UserError) as error:
        read_labelled(path, cfg)
    message = str(error.value)
    assert 'no column "label"' in message and 'name the file\'s column "label"' in message
    assert "--label-column" not in message
    assert read_labelled(write_csv(tmp_path, [("x", "a")], name="ok.csv"), cfg)["label"] == ["a"]


def test_texts_to_predict_come_from_the_named_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path, [("first", "a"), ("second", "b")], name="in.csv", header="sentence,other")
    cfg = DataConfig(train=tmp_path / "train.csv")
    with pytest.raises(UserError, match='no column "text".*--text-column'):
        read_texts(path, cfg)
    read = read_texts(path, cfg, column="sentence")
    assert (read.texts, read.pairs) == (["first", "second"], None)
    assert read.rows == [{"sentence": "first", "other": "a"}, {"sentence": "second", "other": "b"}]


@pytest.mark.parametrize("name", ["in.csv", "in.tsv"])
def test_every_row_to_predict_is_kept_in_order_with_its_other_columns(tmp_path: Path, name: str) -> None:
    # Blank lines before the header and after the last row are no rows; a blank line between rows is one.
    sep = "," if name.endswith(".csv") else "\t"
    path = tmp_path / name
    path.write_text(f"\nid{sep}text\n7{sep}first\n3{sep}second\n9{sep}third\n\n\n")
    read = read_texts(path, DataConfig(train=tmp_path / "train.csv"))
    assert read.texts == ["first", "second", "third"]
    assert [row["id"] for row in read.rows] == ["7", "3", "9"]


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        # A one-column file's empty text is a blank line: refused, not skipped (which shifted every later row).
        (
            "text\ngreat\n\nawful\n\nfine\n",
            ["in.csv, line 3", "the text is empty (1 more line has no text either: 5)", "remove the row"],
        ),
        ('id,text\n1,great\n2,"  "\n', ["in.csv, line 3", 'column "text"', "the text is empty"]),
        ("id,text\n1,great\n2,\u200b\u200b\n", ["line 3", "only invisible characters (U+200B ZERO WIDTH SPACE)"]),
        ("id\n1\n", ['no column "text"', "--text-column"]),
        ("text\n", ["in.csv: no rows to predict for"]),
    ],
    ids=["blank-line", "spaces", "zero-width", "no-text-column", "header-only"],
)
def test_a_file_to_predict_with_a_row_without_text_is_refused_naming_the_line(
    tmp_path: Path, content: str, fragments: list[str]
) -> None:
    path = tmp_path / "in.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(UserError) as caught:
        read_texts(path, DataConfig(train=tmp_path / "train.csv"))
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_a_pair_run_needs_the_second_text_of_every_row(tmp_path: Path) -> None:
    cfg = DataConfig(train=tmp_path / "train.csv", text_pair_column="second")
    path = tmp_path / "in.jsonl"
    path.write_text('{"text": "a film"}\n')
    with pytest.raises(UserError, match='no column "second".*trained on sentence pairs'):
        read_texts(path, cfg)
    path.write_text('{"text": "a film", "second": "a movie"}\n{"text": "a play"}\n')
    with pytest.raises(UserError, match='in.jsonl, line 2, column "second": the text is missing'):
        read_texts(path, cfg)
    path.write_text('{"text": "a film", "second": "a movie", "id": 4}\n')
    read = read_texts(path, cfg)
    assert (read.texts, read.pairs, read.rows[0]["id"]) == (["a film"], ["a movie"], 4)


def test_training_refuses_a_text_of_only_invisible_characters(tmp_path: Path) -> None:
    path = write_csv(tmp_path, [*balanced_rows(5), ("\u200b\u00ad", "a")])
    with pytest.raises(UserError) as caught:
        load_splits(DataConfig(train=path), seed=0)
    assert str(caught.value).startswith(f'{path}, line 22, column "text": the text is only invisible characters (')
    assert "U+00AD SOFT HYPHEN, U+200B ZERO WIDTH SPACE" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "blank"),
    [
        ("", "empty"),
        (" \t\n", "empty"),
        ("\u200b", "only invisible characters (U+200B ZERO WIDTH SPACE)"),
        (" \u200d\x07 ", "only invisible characters (U+0007 control character, U+200D ZERO WIDTH JOINER)"),
        ("\ufeffhello", None),
        ("\u200bé", None),
        ("a", None),
    ],
)
def test_blank_text_names_what_a_text_without_anything_visible_holds(text: str, blank: str | None) -> None:
    assert blank_text(text) == blank


def test_tsv_read_as_csv_gets_a_delimiter_hint(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("text\tlabel\nhello\ta\n")
    with pytest.raises(UserError, match="TSV read as CSV"):
        load_splits(DataConfig(train=path), seed=0)


@pytest.mark.parametrize("text", ["", "   "])
def test_empty_text_names_the_line(tmp_path: Path, text: str) -> None:
    rows = [("fine", "a"), (text, "b"), ("also fine", "a")]
    path = write_csv(tmp_path, rows)
    with pytest.raises(UserError, match=r'train.csv, line 3, column "text": the text is empty'):
        load_splits(DataConfig(train=path), seed=0)


def test_missing_label_names_the_line(tmp_path: Path) -> None:
    path = write_csv(tmp_path, [("fine", "a"), ("no label", "")])
    with pytest.raises(UserError, match=r"line 3, column \"label\": the label is missing"):
        load_splits(DataConfig(train=path), seed=0)


def test_header_only_file(tmp_path: Path) -> None:
    path = write_csv(tmp_path, [])
    with pytest.raises(UserError, match="no data rows"):
        load_splits(DataConfig(train=path), seed=0)


def test_too_few_rows_to_carve(tmp_path: Path) -> None:
    path = write_csv(tmp_path, [("one", "a")])
    with pytest.raises(UserError, match="too few to carve"):
        load_splits(DataConfig(train=path), seed=0)


def test_saved_dataset_dict_brings_its_dev_split(tmp_path: Path) -> None:
    import datasets

    rows = balanced_rows(5)
    train = datasets.Dataset.from_dict({"text": [t for t, _ in rows], "label": [label for _, label in rows]})
    dev = datasets.Dataset.from_dict({"text": ["held out"], "label": ["a"]})
    datasets.DatasetDict({"train": train, "dev": dev}).save_to_disk(tmp_path / "saved")
    loaded = load_splits(DataConfig(train=tmp_path / "saved", test_split=0.0), seed=0)
    assert loaded.splits["validation"]["text"] == ["held out"]
    assert len(loaded.splits["train"]) == 20  # nothing carved: the folder's own dev split is used


def test_context_words_come_from_the_neighbours_in_the_same_document(tmp_path: Path) -> None:
    path = tmp_path / "train.conll"
    path.write_text("-DOCSTART- O\n\na O\nb O\n\nc O\n\nd O\ne O\n\n-DOCSTART- O\n\nf O\n")
    cfg = DataConfig(train=path, validation_split=0, test_split=0)
    split = load_splits(cfg, seed=0, token_level=True, context_words=2).splits["train"]
    assert split["text"] == [["a", "b"], ["c"], ["d", "e"], ["f"]]
    assert split["context_left"] == [[], ["a", "b"], ["b", "c"], []]
    assert split["context_right"] == [["c", "d"], ["d", "e"], [], []]
    assert "context_left" not in load_splits(cfg, seed=0, token_level=True).splits["train"].column_names


def test_context_is_taken_before_the_training_rows_are_shuffled(tmp_path: Path) -> None:
    path = tmp_path / "train.conll"
    path.write_text("".join(f"w{i} O\n\n" for i in range(20)))  # no -DOCSTART-: one document
    cfg = DataConfig(train=path, validation_split=0, test_split=0, max_train_rows=5)
    split = load_splits(cfg, seed=3, token_level=True, context_words=1).splits["train"]
    for (word,), left, right in zip(split["text"], split["context_left"], split["context_right"], strict=True):
        i = int(word[1:])
        assert left == ([f"w{i - 1}"] if i > 0 else []) and right == ([f"w{i + 1}"] if i < 19 else [])


def test_neighbour_words_stop_at_the_limit_and_the_document_edge() -> None:
    sentences = [["a", "b", "c"], ["d"], ["e", "f"], ["g"]]
    left, right = neighbour_words(sentences, documents=[0, 0, 0, 1], limit=3)
    assert left == [[], ["a", "b", "c"], ["b", "c", "d"], []]
    assert right == [["d", "e", "f"], ["e", "f"], [], []]


def test_a_wide_header_without_the_text_column_is_named_in_short(tmp_path: Path) -> None:
    names = [f"c{i}" for i in range(29)] + ["x" * 5000]
    path = tmp_path / "wide.csv"
    path.write_text(",".join(names) + "\n" + ",".join("v" for _ in names) + "\n")
    with pytest.raises(UserError) as caught:
        read_texts(path, DataConfig(train=tmp_path / "train.csv"))
    message = str(caught.value)
    assert "'c0', 'c1'" in message and "'c19', ..." in message and "'c20'" not in message
    assert "Pass --text-column NAME." in message and len(message) < 500
