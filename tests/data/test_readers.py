import csv
import json
from pathlib import Path

import pytest

from tests.conftest import shared_file
from tunesmith.data.readers import read_table
from tunesmith.errors import UserError


def write_bytes(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_tsv_keeps_bare_quotes_and_strips_bom(tmp_path: Path) -> None:
    # MRPC style: BOM, and quotes that are part of the text, not CSV quoting.
    data = '\ufeffQuality\tString\n1\tHe called him "the witness", twice.\n0\t"Quoted start only\n'.encode()
    table = read_table(write_bytes(tmp_path, "mrpc.tsv", data))
    assert list(table.columns) == ["Quality", "String"]
    assert table.columns["String"] == ['He called him "the witness", twice.', '"Quoted start only']
    assert table.lines == [2, 3]


def test_tsv_unquotes_fully_quoted_fields(tmp_path: Path) -> None:
    # AG News style: fields holding a quote were written with CSV quoting.
    data = b'text\tlabel\n"He said ""no"" today"\tWorld\nplain text\tSports\n'
    table = read_table(write_bytes(tmp_path, "ag.tsv", data))
    assert table.columns["text"] == ['He said "no" today', "plain text"]


def test_crlf_and_trailing_blank_lines(tmp_path: Path) -> None:
    table = read_table(write_bytes(tmp_path, "crlf.tsv", b"sentence\tlabel\r\nfine film \t1\r\n\r\nbad film\t0\r\n"))
    assert table.columns["sentence"] == ["fine film ", "bad film"]
    assert table.columns["label"] == ["1", "0"]
    assert table.lines == [2, 4]


def test_csv_with_quoted_newline_keeps_line_numbers(tmp_path: Path) -> None:
    data = b'text,label\n"first\nrow, two lines",a\nsecond,b\n'
    table = read_table(write_bytes(tmp_path, "multi.csv", data))
    assert table.columns["text"] == ["first\nrow, two lines", "second"]
    assert table.lines == [2, 4]


def test_headerless_file_with_column_names(tmp_path: Path) -> None:
    table = read_table(write_bytes(tmp_path, "nohead.tsv", b"a text\tWorld\n"), column_names=["text", "label"])
    assert table.columns == {"text": ["a text"], "label": ["World"]}


def test_jsonl_rows_and_late_keys(tmp_path: Path) -> None:
    lines = [json.dumps({"text": "a", "label": 1}), "", json.dumps({"text": "b", "label": 0, "extra": True})]
    table = read_table(write_bytes(tmp_path, "d.jsonl", "\n".join(lines).encode()))
    assert table.columns["label"] == [1, 0]
    assert table.columns["extra"] == [None, True]
    assert table.lines == [1, 3]


def test_json_array_file(tmp_path: Path) -> None:
    table = read_table(write_bytes(tmp_path, "d.json", b'[{"text": "a", "label": "x"}]'))
    assert table.columns == {"text": ["a"], "label": ["x"]}


def test_parquet(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"text": ["a", "b"], "label": [0, 1]}), path)
    assert read_table(path).columns == {"text": ["a", "b"], "label": [0, 1]}


def test_saved_dataset_dict_maps_class_labels_to_names(tmp_path: Path) -> None:
    import datasets

    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])})
    train = datasets.Dataset.from_dict({"text": ["a", "b"], "label": [0, 1]}, features=features)
    datasets.DatasetDict({"train": train, "test": train.select([1])}).save_to_disk(tmp_path / "saved")
    assert read_table(tmp_path / "saved", split="train").columns["label"] == ["neg", "pos"]
    assert read_table(tmp_path / "saved", split="test").columns["text"] == ["b"]
    with pytest.raises(UserError, match="no 'validation' split"):
        read_table(tmp_path / "saved", split="validation")


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        (
            "latin1.tsv",
            b"text\tlabel\nok\t1\ncaf\xe9\t0\n",
            r"latin1.tsv, line 3, character 4: byte 0xe9 is not valid UTF-8",
        ),
        ("binary.csv", b"text,label\n\x00\x01\x02,1\n", r"binary.csv, line 2: contains a NUL byte"),
        (
            "ragged.tsv",
            b"text\tlabel\nok\t1\ntoo\tmany\tfields\n",
            r"ragged.tsv, line 3: 3 fields, but the header has 2",
        ),
        ("ragged.csv", b"text,label\nshort\n", r"ragged.csv, line 2: 1 fields, but the header has 2"),
        ("bad.jsonl", b'{"text": "a"}\n{"text": \n', r"bad.jsonl, line 2, character \d+: not valid JSON"),
        ("list.jsonl", b'{"text": "a"}\n[1, 2]\n', r"list.jsonl, line 2: expected a JSON object"),
        ("empty.csv", b"", r"empty.csv: the file is empty"),
        ("dup.csv", b"text,text\na,b\n", r"header names column 'text' twice"),
        ("data.xlsx", b"PK", r"cannot tell the format from the extension '.xlsx'"),
        ("junk.parquet", b"not parquet at all", r"junk.parquet: cannot read as Parquet"),
        ("quote.csv", b'text,label\n"unterminated,1\n', r"quote.csv, line \d+: malformed CSV"),
    ],
)
def test_bad_files_name_file_and_line(tmp_path: Path, name: str, data: bytes, expected: str) -> None:
    with pytest.raises(UserError, match=expected):
        read_table(write_bytes(tmp_path, name, data))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"nope.csv: file not found"):
        read_table(tmp_path / "nope.csv")


# The real benchmark files and their traps (see ../shared/data/*/SOURCE.md for the counts).


def test_real_sst2_train_and_crlf_test() -> None:
    train = read_table(shared_file("sst2", "train.tsv"))
    assert len(train) == 67_349
    assert train.columns["label"].count("0") == 29_780
    test = read_table(shared_file("sst2", "test.tsv"))
    assert len(test) == 1_821
    assert not any(text.endswith("\r") for text in test.columns["sentence"])
    assert set(test.columns["label"]) == {"0", "1"}


def test_real_mrpc_bom_and_bare_quotes() -> None:
    train = read_table(shared_file("mrpc", "train.tsv"))
    assert list(train.columns)[0] == "Quality"  # the BOM is not part of the first column name
    assert len(train) == 3_668
    assert train.columns["Quality"].count("1") == 2_474
    assert sum(text.startswith('"') for text in train.columns["#1 String"]) > 0  # bare quotes kept as text


def test_real_agnews_quoted_fields_match_the_original_csv() -> None:
    table = read_table(shared_file("agnews", "test.tsv"), column_names=["text", "label"])
    assert len(table) == 7_600
    with open(shared_file("agnews", "original", "test.csv"), newline="", encoding="utf-8") as handle:
        original = [row[2] for row in csv.reader(handle)]
    assert table.columns["text"] == original
