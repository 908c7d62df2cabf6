"""Fuzzing the readers, the split builder, the tasks' label checks and the config loader.

Whatever the bytes, each either returns its result or raises UserError (a message for the
user, exit code 2); any other exception is a bug. The examples are derandomized, so CI runs
the same ones every time, and bounded so that the module takes seconds: this guards the
error paths against regressions, it is not a search that runs for hours.
"""

from __future__ import annotations

import io
import json
import string
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tunesmith.config import RunConfig, load_config, validate_config
from tunesmith.data.conll import read_conll
from tunesmith.data.readers import Table, read_table
from tunesmith.data.splits import load_splits
from tunesmith.errors import UserError
from tunesmith.tasks import get_task

FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FEW = settings(FUZZ, max_examples=100)

SUFFIXES = [".csv", ".tsv", ".jsonl", ".json", ".txt"]

# Pieces that make parsers take unusual paths: delimiters, quotes, line ends, NUL, BOMs, invalid UTF-8.
PIECES = [
    ",", "\t", ";", "|", '"', '""', "'", "\n", "\r\n", "\r", " ", "\x00", "\ufeff", "\u2028", "\x0b",
    "text", "label", "tokens", "tags", "O", "B-PER", "I-PER", "E-LOC", "S-ORG", "-DOCSTART-",
    "{", "}", "[", "]", ":", "null", "NaN", "1.5", "-1", "1e400", "é", "日本",
]  # fmt: skip
RAW_PIECES = [b"\xff", b"\xfe", b"\xe9", b"\xef\xbb\xbf", b"\xff\xfe", b"\x00\x00", b"\xc3"]


@contextmanager
def written(data: bytes, name: str) -> Iterator[Path]:
    # hypothesis runs many examples per test, so each gets its own folder rather than pytest's tmp_path.
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        yield path


def user_error_or(call: Callable[[], Any]) -> Any:
    """The call's result, or None when it raised UserError; any other exception fails the test."""
    try:
        return call()
    except UserError as error:
        message = str(error)
        assert message.strip() and "Traceback" not in message
        return None


def joined(pieces: list[str | bytes]) -> bytes:
    return b"".join(piece if isinstance(piece, bytes) else piece.encode("utf-8") for piece in pieces)


piece_soup = st.lists(
    st.one_of(st.sampled_from(PIECES), st.sampled_from(RAW_PIECES), st.text(max_size=6)), max_size=60
).map(joined)

# Tables that are nearly right: a header, rows of fields, with a few hostile pieces mixed in.
field = st.one_of(
    st.sampled_from(["", " ", "pos", "neg", "a b", '"q"', '"a,b"', '"open', "1.5", "x\ty", "é"]),
    st.text(alphabet=string.printable + "é\x00\ufeff", max_size=8),
)


@st.composite
def delimited(draw: st.DrawFn) -> bytes:
    delimiter = draw(st.sampled_from([",", "\t", ";"]))
    header = draw(st.lists(st.sampled_from(["text", "label", "text", "x", ""]), min_size=1, max_size=4))
    rows = draw(st.lists(st.lists(field, min_size=0, max_size=5), max_size=8))
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    lines = [delimiter.join(header)] + [delimiter.join(row) for row in rows]
    return newline.join(lines).encode("utf-8") + draw(st.sampled_from([b"", b"\n", b"\xff", b"\x00"]))


json_value = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=8),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.sampled_from(["text", "label", "a"]), children, max_size=3)
    ),
    max_leaves=12,
)
record = st.dictionaries(st.sampled_from(["text", "label", "tokens", "tags", "score", "extra"]), json_value, max_size=5)
# Rows that mostly get past the text checks, so that the odd labels, tags and scores are reached.
labelled_record = st.fixed_dictionaries(
    {
        "text": st.one_of(st.sampled_from(["a film", "so dull"]), json_value),
        "tokens": st.one_of(st.lists(st.sampled_from(["EU", "rejects", " "]), max_size=3), json_value),
    },
    optional={
        "label": st.one_of(st.sampled_from(["pos", "neg", "1.5", "a,b", "a,,b", "2"]), json_value),
        "tags": st.one_of(st.lists(st.sampled_from(["O", "B-PER", "I-PER", "E-LOC", "X"]), max_size=3), json_value),
        "score": st.one_of(st.sampled_from(["1.5", "NaN", "3"]), json_value),
    },
)


@st.composite
def json_lines(draw: st.DrawFn) -> bytes:
    values = draw(st.lists(st.one_of(record, json_value), max_size=6))
    lines = [json.dumps(value) for value in values]
    if draw(st.booleans()) and lines:
        # Cut one line short, the commonest real corruption.
        index = draw(st.integers(0, len(lines) - 1))
        lines[index] = lines[index][: draw(st.integers(0, len(lines[index])))]
    if draw(st.booleans()):
        return json.dumps(values, indent=draw(st.sampled_from([None, 2]))).encode("utf-8")
    return "\n".join(lines).encode("utf-8")


@given(data=st.one_of(st.binary(max_size=300), piece_soup, delimited(), json_lines()), suffix=st.sampled_from(SUFFIXES))
@FUZZ
def test_read_table_returns_a_table_or_a_user_error(data: bytes, suffix: str) -> None:
    with written(data, "data" + suffix) as path:
        table = user_error_or(lambda: read_table(path))
    if table is not None:
        assert isinstance(table, Table)
        assert all(len(values) == len(table) for values in table.columns.values())


@given(data=st.one_of(st.binary(max_size=300), piece_soup), cut=st.integers(0, 2000))
@FEW
def test_read_table_parquet_bytes(data: bytes, cut: int) -> None:
    # Random bytes, and a real Parquet file cut short or with bytes spliced in.
    buffer = io.BytesIO()
    pq.write_table(pa.table({"text": ["a", "b"], "label": ["x", "y"]}), buffer)
    real = buffer.getvalue()
    for candidate in (data, real[: cut % len(real)], real[: cut % len(real)] + data + real[cut % len(real) :]):
        with written(candidate, "data.parquet") as path:
            user_error_or(lambda path=path: read_table(path))


conll_line = st.one_of(
    st.just(""),
    st.just("-DOCSTART- -X- O"),
    st.builds(
        " ".join,
        st.lists(st.sampled_from(["EU", "rejects", "科0", "S10", "O", "B-PER", "I-LOC", "x", "\t", "NNP"]), max_size=4),
    ),
    st.text(alphabet=" \t\r\x00\x1c\u3000abO-", max_size=8),
)


@given(
    data=st.one_of(st.lists(conll_line, max_size=12).map(lambda lines: "\n".join(lines).encode()), piece_soup),
    tag_column=st.integers(-4, 4),
    strip_digits=st.booleans(),
)
@FUZZ
def test_read_conll_returns_sentences_or_a_user_error(data: bytes, tag_column: int, strip_digits: bool) -> None:
    with written(data, "data.conll") as path:
        table = user_error_or(lambda: read_conll(path, tag_column, strip_digits))
    if table is not None:
        assert len(table.columns["tokens"]) == len(table.columns["tags"]) == len(table.lines) > 0
        for tokens, tags in zip(table.columns["tokens"], table.columns["tags"], strict=True):
            assert len(tokens) == len(tags) > 0


@given(
    records=st.lists(st.one_of(labelled_record, record), min_size=0, max_size=6),
    task=st.sampled_from(["classification", "regression", "multilabel", "ner"]),
)
@FEW
def test_splits_and_task_labels_from_odd_json_records(records: list[dict[str, Any]], task: str) -> None:
    """Whatever JSON rows hold, building the splits and the task's labels ends in data or a UserError."""
    text = "\n".join(json.dumps(row) for row in records).encode()
    with written(text, "train.jsonl") as path:
        raw = {
            "task": task,
            "data": {"train": str(path), "validation_split": 0.0, "test_split": 0.0},
        }
        if task == "regression":
            raw["data"]["label_column"] = "score"
        cfg = RunConfig.model_validate(raw)

        def build() -> Any:
            loaded = load_splits(cfg.data, seed=0, token_level=task == "ner")
            labels = get_task(cfg)
            labels.fit_labels(loaded.splits["train"], path)
            return labels.encode(loaded.splits["train"], path)

        user_error_or(build)


# Config files: real keys and values of the wrong shape, and YAML that is barely YAML.
CONFIG_KEYS = [
    "data", "train", "validation", "training", "epochs", "batch_size", "learning_rate", "task", "model", "name",
    "label_names", "column_names", "tag_column", "ner", "scheme", "multilabel", "separator", "threshold",
    "validation_split", "test_split", "max_length", "seed", "output_dir", "format", "trainig", "1", "<<",
]  # fmt: skip
yaml_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(max_size=10),
    st.sampled_from(["t.csv", "ner", "iob2", "2001-12-14", "3", "-1", ".inf", "1e-3", "[1]"]),
)
config_tree = st.recursive(
    yaml_scalar,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.sampled_from(CONFIG_KEYS), children, max_size=4)
    ),
    max_leaves=15,
)
yaml_soup = st.lists(
    st.sampled_from(
        [
            "data:", "\n", "  ", "\t", "train: t.csv", "training:", "epochs: ", "- ", "[", "]", "{", "}", ",",
            ": ", "&a ", "*a", "!!str ", "!!binary ", "!!python/name:os ", "!!set ", "!!omap ", "? ", "'", '"',
            "#", "---", "...", "%YAML 1.1", "<<: ", "2001-12-14", "\x00", "\ufeff", "é",
        ]
    ),
    max_size=40,
).map("".join)  # fmt: skip
# yaml.safe_load raises ValueError, IndexError, AttributeError or KeyError (not YAMLError) on these, and
# config.read_yaml and parse_assignment let them through: kept out of the soup above until
# they are caught, and pinned by test_yaml_constructor_crashes_are_user_errors.
YAML_CONSTRUCTOR_CRASHES = ["a: !!int", "a: !!float abc", "a: !!timestamp x", "a: !!bool maybe", "name: 2024-02-30"]


def refuses_only_with_user_error(config_text: bytes) -> None:
    with written(config_text, "config.yaml") as path:
        cfg = user_error_or(lambda: load_config(path, assignments=["training.seed=1"]))
    assert cfg is None or isinstance(cfg, RunConfig)


@given(tree=config_tree)
@FUZZ
def test_validate_config_on_any_tree(tree: Any) -> None:
    cfg = user_error_or(lambda: validate_config(tree, "the fuzzer"))
    assert cfg is None or isinstance(cfg, RunConfig)


@given(tree=st.dictionaries(st.sampled_from(CONFIG_KEYS), config_tree, max_size=5))
@FUZZ
def test_load_config_on_dumped_trees(tree: dict[str, Any]) -> None:
    refuses_only_with_user_error(yaml.safe_dump(tree, allow_unicode=True).encode("utf-8"))


@given(text=yaml_soup)
@FUZZ
def test_load_config_on_yaml_soup(text: str) -> None:
    refuses_only_with_user_error(text.encode("utf-8"))


@given(data=st.binary(max_size=200))
@FEW
def test_load_config_on_bytes(data: bytes) -> None:
    refuses_only_with_user_error(data)


@given(
    assignments=st.lists(
        st.builds("{}={}".format, st.sampled_from(CONFIG_KEYS + ["data.train", "a.b.c"]), yaml_soup), max_size=3
    )
)
@FEW
def test_load_config_overrides(assignments: list[str]) -> None:
    cfg = user_error_or(lambda: load_config(None, {"data.train": "t.csv"}, assignments))
    assert cfg is None or isinstance(cfg, RunConfig)


@pytest.mark.parametrize("text", YAML_CONSTRUCTOR_CRASHES)
def test_yaml_constructor_crashes_are_user_errors(text: str, tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("data:\n  train: t.csv\n" + text + "\n")
    with pytest.raises(UserError, match="config.yaml"):
        load_config(path)


def test_override_with_an_impossible_date_is_a_string() -> None:
    cfg = load_config(None, {"data.train": "t.csv"}, ["name=2024-02-30"])
    assert cfg.name == "2024-02-30"
