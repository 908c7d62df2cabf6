"""Each augmentation edit on real data: what it makes, how many rows, how long it takes.

SST-2: a seeded sample of 1,000 training rows (numpy default_rng(0)), each operation alone with
alpha 0.1 and one copy per row (seed 0): new rows kept (a copy an edit left unchanged is dropped),
words per text before and after, seconds, and the first rows it edited. CoNLL-2003: every training
sentence with entity mention replacement (alpha 0.1, one copy): new rows, seconds, and a check that
every new sentence has one tag per token, valid IOB2, and its original's entity types in order.

    OMP_NUM_THREADS=1 nice -n 10 python bench/augmentation/examples.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import datasets
from seqeval.metrics.sequence_labeling import get_entities

sys.path.insert(0, str(Path(__file__).resolve().parent))
from small_data import DATA, read_tsv, write_sample  # noqa: E402

from tunesmith.data.augment.apply import Plan, augment_entities, augment_texts  # noqa: E402
from tunesmith.data.augment.lexicon import wordnet_synonyms  # noqa: E402
from tunesmith.data.conll import read_conll  # noqa: E402

CONLL = DATA.parent / "conll2003" / "train.txt"


def valid_iob2(tags: list[str]) -> bool:
    return all(tag == "O" or tag[:2] == "B-" or (i > 0 and tags[i - 1][2:] == tag[2:]) for i, tag in enumerate(tags))


def sst2(output: dict) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        rows = read_tsv(write_sample(read_tsv(DATA / "train.tsv"), 1000, 0, Path(folder) / "sample.tsv"))
    # "row" rides along with each new row (every column but the edited ones is its row's), naming its original.
    columns = {"text": [text for text, _ in rows], "labels": [int(y) for _, y in rows], "row": list(range(len(rows)))}
    train = datasets.Dataset.from_dict(columns)
    started = time.perf_counter()
    synonyms = wordnet_synonyms("synonym")
    output["wordnet_load_seconds"] = round(time.perf_counter() - started, 2)
    before = sum(len(text.split()) for text in train["text"]) / len(train)
    for operation in ("swap", "delete", "insert", "synonym", "cutoff"):
        started = time.perf_counter()
        augmented = augment_texts(train, Plan([operation], 0.1, 1, seed=0), synonyms)
        seconds = time.perf_counter() - started
        new = augmented.select(range(len(train), len(augmented)))
        long = [(train["text"][row], text) for row, text in zip(new["row"], new["text"], strict=True)]
        output["sst2"][operation] = {
            "new_rows": len(new),
            "words_before": round(before, 2),
            "words_after": round(sum(len(t.split()) for t in new["text"]) / max(1, len(new)), 2),
            "seconds": round(seconds, 2),
            # The first three edited rows of at least eight words, beside their originals.
            "examples": [[old.strip(), text] for old, text in long if len(old.split()) >= 8][:3],
        }
        print(operation, json.dumps(output["sst2"][operation], ensure_ascii=False), flush=True)


def conll(output: dict) -> None:
    table = read_conll(CONLL)
    tokens, tags = table.columns["tokens"], table.columns["tags"]
    names = ["O"] + sorted({tag for sentence in tags for tag in sentence if tag != "O"})
    ids = {name: i for i, name in enumerate(names)}
    train = datasets.Dataset.from_dict(
        {"text": tokens, "labels": [[ids[t] for t in s] for s in tags], "row": list(range(len(tokens)))}
    )
    started = time.perf_counter()
    augmented = augment_entities(train, Plan(["entity"], 0.1, 1, seed=0), names)
    seconds = time.perf_counter() - started
    new = augmented.select(range(len(train), len(augmented)))
    new_tags = [[names[i] for i in labels] for labels in new["labels"]]
    aligned = all(len(a) == len(b) for a, b in zip(new["text"], new_tags, strict=True))
    valid = all(valid_iob2(sentence) for sentence in new_tags)
    types = all(
        [kind for kind, _, _ in get_entities(sentence)] == [kind for kind, _, _ in get_entities(tags[row])]
        for sentence, row in zip(new_tags, new["row"], strict=True)
    )
    output["conll2003"] = {
        "sentences": len(train),
        "with_entities": sum(any(t != "O" for t in s) for s in tags),
        "new_rows": len(new),
        "seconds": round(seconds, 2),
        "aligned": aligned,
        "valid_iob2": valid,
        "entity_types_kept": types,
        "example": [" ".join(f"{w}/{t}" for w, t in zip(new["text"][0], new_tags[0], strict=True))],
    }
    print("entity", json.dumps(output["conll2003"], ensure_ascii=False), flush=True)


def main() -> int:
    import torch

    torch.set_num_threads(1)
    output: dict = {"sst2": {}}
    sst2(output)
    if CONLL.exists():
        conll(output)
    Path("bench/augmentation/examples.json").write_text(json.dumps(output, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
