from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import shared_file
from tunesmith.data.conll import read_conll
from tunesmith.errors import UserError


def write(tmp_path: Path, data: str | bytes, name: str = "data.conll") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def at(path: Path, line: int) -> str:
    """Pattern for 'file, line N' at the start of an error message."""
    return re.escape(f"{path}, line {line}:")


def test_sentences_tokens_tags_and_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "EU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\nPeter NNP B-NP B-PER\n")
    table = read_conll(path)
    assert table.columns == {
        "tokens": [["EU", "rejects"], ["Peter"]],
        "tags": [["B-ORG", "O"], ["B-PER"]],
        "document": [0, 0],  # no -DOCSTART-: one document
    }
    assert table.lines == [1, 4]
    assert table.unit == "line"
    assert table.path == path
    assert len(table) == 2
    assert table.locate(1) == f"{path}, line 4"


def test_docstart_and_many_blank_lines(tmp_path: Path) -> None:
    text = "-DOCSTART- -X- -X- O\n\n\n\na x O\nb x B-PER\n\n\n-DOCSTART- -X- O\n\nc x O\n\n"
    table = read_conll(write(tmp_path, text))
    assert table.columns["tokens"] == [["a", "b"], ["c"]]
    assert table.lines == [5, 11]
    assert table.columns["document"] == [1, 2]


def test_docstart_ends_a_sentence(tmp_path: Path) -> None:
    # Otherwise token i of a sentence would no longer be on line lines[k] + i.
    table = read_conll(write(tmp_path, "a O\n-DOCSTART-\nb O\n"))
    assert table.columns["tokens"] == [["a"], ["b"]]
    assert table.lines == [1, 3]


def test_whitespace_only_separators_and_mixed_field_separators(tmp_path: Path) -> None:
    text = "  a \t B-LOC\nb\tI-LOC  \n \t \nc    O\n\t\n"
    table = read_conll(write(tmp_path, text))
    assert (table.columns["tokens"], table.columns["tags"]) == ([["a", "b"], ["c"]], [["B-LOC", "I-LOC"], ["O"]])
    assert table.lines == [1, 4]


def test_token_i_is_on_line_lines_plus_i(tmp_path: Path) -> None:
    text = "\n\nx O\ny O\nz B-PER\n\n\nw O\nv O\n"
    path = write(tmp_path, text)
    table = read_conll(path)
    raw = text.split("\n")
    for k, tokens in enumerate(table.columns["tokens"]):
        for i, token in enumerate(tokens):
            assert raw[table.lines[k] + i - 1].split()[0] == token


def test_crlf_and_bom(tmp_path: Path) -> None:
    table = read_conll(write(tmp_path, "\ufeffa O\r\nb B-PER\r\n\r\nc O\r\n".encode()))
    assert (table.columns["tokens"], table.columns["tags"]) == ([["a", "b"], ["c"]], [["O", "B-PER"], ["O"]])
    assert table.lines == [1, 4]


def test_no_final_newline_keeps_last_sentence(tmp_path: Path) -> None:
    table = read_conll(write(tmp_path, "a O\n\nb B-PER\nc I-PER"))
    assert table.columns["tokens"] == [["a"], ["b", "c"]]
    assert table.columns["tags"][-1] == ["B-PER", "I-PER"]


def test_tag_column_choice(tmp_path: Path) -> None:
    path = write(tmp_path, "EU NNP B-NP B-ORG\nrejects VBZ B-VP O\n")
    assert read_conll(path, tag_column=1).columns["tags"] == [["NNP", "VBZ"]]
    assert read_conll(path, tag_column=2).columns["tags"] == [["B-NP", "B-VP"]]
    assert read_conll(path, tag_column=-2).columns["tags"] == [["B-NP", "B-VP"]]
    assert read_conll(path, tag_column=3).columns["tags"] == [["B-ORG", "O"]]


def test_tokens_kept_as_written_without_stripping(tmp_path: Path) -> None:
    table = read_conll(write(tmp_path, "科0\tB-ORG.NAM\n技1\tI-ORG.NAM\n"))
    assert table.columns["tokens"] == [["科0", "技1"]]


def test_strip_position_digits(tmp_path: Path) -> None:
    # Weibo NER: character + its position in the word, which may have several digits,
    # and the character may itself be a digit ("20" is "2" at position 0).
    text = "科0\tB-ORG.NAM\n技1\tI-ORG.NAM\n20\tO\nS10\tO\n310\tO\n011\tO\n\ufffd\ufffd0\tO\n１0\tO\n"
    table = read_conll(write(tmp_path, text), strip_position_digits=True)
    assert table.columns["tokens"] == [["科", "技", "2", "S", "3", "0", "\ufffd\ufffd", "１"]]


@pytest.mark.parametrize("token", ["科", "5", "x１"])
def test_strip_position_digits_needs_a_digit(tmp_path: Path, token: str) -> None:
    # A lone digit has no character left; a full-width digit is a character, not a position.
    path = write(tmp_path, f"a0 O\n{token} O\n")
    message = at(path, 2) + f" token '{token}' has no trailing position digit.*strip_position_digits to false"
    with pytest.raises(UserError, match=message):
        read_conll(path, strip_position_digits=True)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=re.escape(f"{tmp_path / 'nope.conll'}: file not found")):
        read_conll(tmp_path / "nope.conll")


def test_folder(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="is a folder"):
        read_conll(tmp_path)


def test_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, b"a O\n\ncaf\xe9 O\n")
    with pytest.raises(UserError, match=at(path, 3) + " byte 0xe9 is not valid UTF-8"):
        read_conll(path)


def test_not_utf8_after_bom_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, b"\xef\xbb\xbfa O\nb\xff O\n")
    with pytest.raises(UserError, match=at(path, 2) + " byte 0xff"):
        read_conll(path)


def test_nul_byte(tmp_path: Path) -> None:
    path = write(tmp_path, b"a O\nb O\nc\x00 O\n")
    with pytest.raises(UserError, match=at(path, 3) + " contains a NUL byte"):
        read_conll(path)


def test_one_field(tmp_path: Path) -> None:
    path = write(tmp_path, "a O\n\nlonely\nb O\n")
    message = at(path, 3) + " has one field 'lonely' but a token and a tag are needed"
    with pytest.raises(UserError, match=message):
        read_conll(path)


@pytest.mark.parametrize(("tag_column", "needed"), [(3, 4), (-3, 4)])
def test_too_few_fields_for_tag_column(tmp_path: Path, tag_column: int, needed: int) -> None:
    path = write(tmp_path, "a NN B-NP O\nb NN O\n")
    message = at(path, 2) + f" has 3 fields but data.tag_column {tag_column} needs at least {needed}"
    with pytest.raises(UserError, match=message):
        read_conll(path, tag_column=tag_column)


def test_tag_column_zero_is_the_token(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="data.tag_column is 0, the token column"):
        read_conll(write(tmp_path, "a O\n"), tag_column=0)


@pytest.mark.parametrize("text", ["", "\n\n  \n", "-DOCSTART- -X- -X- O\n\n"])
def test_no_sentences(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(UserError, match=re.escape(f"{path}: no sentences") + ".*Is it a CoNLL file"):
        read_conll(path)


@pytest.mark.parametrize(
    ("split", "sentences", "tokens"),
    [("train", 14_041, 203_621), ("dev", 3_250, 51_362), ("test", 3_453, 46_435)],
)
def test_conll2003_counts(split: str, sentences: int, tokens: int) -> None:
    table = read_conll(shared_file("conll2003", f"{split}.txt"))
    assert len(table) == sentences
    assert sum(len(s) for s in table.columns["tokens"]) == tokens
    assert sum(len(s) for s in table.columns["tags"]) == tokens


@pytest.mark.parametrize(
    ("split", "sentences", "characters"),
    [("train", 1_350, 73_778), ("dev", 270, 14_509), ("test", 270, 14_842)],
)
def test_weibo_ner_counts(split: str, sentences: int, characters: int) -> None:
    table = read_conll(shared_file("weibo_ner", f"{split}.conll"), strip_position_digits=True)
    tokens = [token for sentence in table.columns["tokens"] for token in sentence]
    assert len(table) == sentences
    assert len(tokens) == characters
    # One character each, except emoji that the corpus stored as two U+FFFD replacement characters.
    assert {token for token in tokens if len(token) != 1} <= {"\ufffd\ufffd"}
