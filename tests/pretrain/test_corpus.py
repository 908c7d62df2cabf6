from __future__ import annotations

from pathlib import Path

import pytest

from tunesmith.errors import UserError
from tunesmith.pretrain.config import CorpusConfig
from tunesmith.pretrain.corpus import join_tokens, read_corpus


def config(**options) -> CorpusConfig:
    return CorpusConfig(train=["unused"], **options)


def test_lines_are_documents_crlf_and_bom_handled(tmp_path: Path) -> None:
    path = tmp_path / "c.txt"
    path.write_bytes("\ufefffirst  document\r\n\r\nsecond\tone\r\n".encode())
    assert read_corpus([path], config()) == ["first document", "second one"]


def test_paragraphs_are_separated_by_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "c.txt"
    path.write_text("one line\nsame document\n\n  \nnext document\n", encoding="utf-8")
    assert read_corpus([path], config(documents="paragraphs")) == ["one line same document", "next document"]


def test_text_column_of_a_table(tmp_path: Path) -> None:
    path = tmp_path / "c.tsv"
    path.write_text("label\tsentence\n1\tgood film\n0\t\n0\tbad one\n", encoding="utf-8")
    assert read_corpus([path], config(text_column="sentence")) == ["good film", "bad one"]
    with pytest.raises(UserError, match=r'no column "text".*data.text_column'):
        read_corpus([path], config())


def test_conll_sentences_joined_without_spaces_for_characters(tmp_path: Path) -> None:
    path = tmp_path / "c.conll"
    path.write_text("科0 O\n技1 O\n\n中0 B-ORG\n国1 I-ORG\n", encoding="utf-8")
    assert read_corpus([path], config(strip_position_digits=True)) == ["科技", "中国"]
    english = tmp_path / "e.conll"
    english.write_text("EU NNP B-ORG\nrejects VBZ O\n", encoding="utf-8")
    assert read_corpus([english], config()) == ["EU rejects"]
    assert join_tokens(["I", "am"]) == "I am"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "holds no text"),
        (b"\n \n\t\n", "holds no text"),
        (b"text\x00\x01\x02binary", "NUL byte"),
        (b"caf\xe9 latin-1\n", "not valid UTF-8"),
    ],
)
def test_unusable_corpus_is_refused_naming_the_file(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(UserError, match=message) as raised:
        read_corpus([path], config())
    assert str(path) in str(raised.value)


def test_max_documents_samples_in_order(tmp_path: Path) -> None:
    path = tmp_path / "c.txt"
    path.write_text("".join(f"doc {i}\n" for i in range(100)), encoding="utf-8")
    sampled = read_corpus([path], config(max_documents=10))
    assert len(sampled) == 10 and sampled == sorted(sampled, key=lambda d: int(d.split()[1]))
