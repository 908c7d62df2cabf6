"""Write the pretraining corpora of docs/pretraining.md from ../shared/data, outside the repository.

    python bench/pretraining/make_corpora.py OUT_DIR

OUT_DIR/english.txt: wikitext (wiki.test.raw and wiki.valid.tokens) and the training texts of SST-2,
MRPC, STS-B, AG News, GoEmotions and CoNLL-2003, one document per line. OUT_DIR/chinese.txt: the training
texts of ChnSentiCorp and the Weibo NER training sentences. Only training splits: the dev and test
texts that the fine-tuning runs are scored on stay unseen.
"""

from __future__ import annotations

import sys
from pathlib import Path

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def tsv_column(path: Path, column: str | int, header: bool = True) -> list[str]:
    lines = path.read_text(encoding="utf-8-sig").replace("\r\n", "\n").split("\n")
    names = lines[0].split("\t") if header else []
    index = names.index(column) if isinstance(column, str) else column
    rows = (line.split("\t") for line in lines[1 if header else 0 :] if line.strip())
    return [row[index] for row in rows if len(row) > index and row[index].strip()]


def conll_sentences(path: Path, strip_digits: bool = False) -> list[str]:
    sentences, words = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if not fields or fields[0] == "-DOCSTART-":
            if words:
                sentences.append(("" if strip_digits else " ").join(words))
            words = []
            continue
        # Weibo NER writes each character with its position in the word ("科0"): the character is first.
        words.append(fields[0][0] if strip_digits else fields[0])
    if words:
        sentences.append(("" if strip_digits else " ").join(words))
    return sentences


def english() -> list[str]:
    wiki = [
        line.strip()
        for name in ("wiki.test.raw", "wiki.valid.tokens")
        for line in (SHARED / "wikitext" / name).read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    return [
        *wiki,
        *tsv_column(SHARED / "sst2" / "train.tsv", "sentence"),
        *tsv_column(SHARED / "mrpc" / "train.tsv", "#1 String"),
        *tsv_column(SHARED / "mrpc" / "train.tsv", "#2 String"),
        *tsv_column(SHARED / "stsb" / "train.tsv", "sentence1"),
        *tsv_column(SHARED / "stsb" / "train.tsv", "sentence2"),
        *tsv_column(SHARED / "agnews" / "train.tsv", 0, header=False),
        *tsv_column(SHARED / "goemotions" / "train.tsv", 0, header=False),
        *conll_sentences(SHARED / "conll2003" / "train.txt"),
    ]


def chinese() -> list[str]:
    return [
        *tsv_column(SHARED / "chnsenticorp" / "train.tsv", "text_a"),
        *conll_sentences(SHARED / "weibo_ner" / "train.conll", strip_digits=True),
    ]


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, documents in (("english", english()), ("chinese", chinese())):
        text = "\n".join(" ".join(document.split()) for document in documents) + "\n"
        (out / f"{name}.txt").write_text(text, encoding="utf-8")
        print(f"{out / name}.txt: {len(documents)} documents, {len(text) / 1e6:.1f} M characters")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
