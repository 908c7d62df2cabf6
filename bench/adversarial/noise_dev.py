"""A noised copy of SST-2's dev set: character typos and dropped words, reproducible from a seed.

Each word is dropped with probability --drop (a sentence keeps at least one word); each kept word of three
letters or more gets, with probability --typo, one typo: two neighbouring letters swapped, a letter deleted,
a letter doubled, or a letter replaced by a neighbour on a QWERTY keyboard. Labels are unchanged.

    python bench/adversarial/noise_dev.py ../shared/data/sst2/dev.tsv /tmp/adv-bench/dev_noised.tsv --seed 0
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

KEYBOARD = ["qwertyuiop", "asdfghjkl", "zxcvbnm"]


def neighbours(letter: str) -> str:
    """The letters beside `letter` on its keyboard row (itself when it is no lowercase letter)."""
    for row in KEYBOARD:
        at = row.find(letter)
        if at >= 0:
            return row[max(at - 1, 0) : at] + row[at + 1 : at + 2]
    return letter


def typo(word: str, rng: random.Random) -> str:
    at = rng.randrange(len(word) - 1)
    kind = rng.choice(["swap", "delete", "double", "replace"])
    if kind == "swap":
        return word[:at] + word[at + 1] + word[at] + word[at + 2 :]
    if kind == "delete":
        return word[:at] + word[at + 1 :]
    if kind == "double":
        return word[: at + 1] + word[at] + word[at + 1 :]
    return word[:at] + rng.choice(neighbours(word[at])) + word[at + 1 :]


def noise(sentence: str, rng: random.Random, drop: float, typo_rate: float) -> str:
    words = sentence.split()
    kept = [word for word in words if rng.random() >= drop] or [rng.choice(words)]
    return " ".join(typo(w, rng) if len(w) >= 3 and w.isalpha() and rng.random() < typo_rate else w for w in kept)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="SST-2 dev.tsv (sentence<TAB>label, with a header)")
    parser.add_argument("target", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--drop", type=float, default=0.1)
    parser.add_argument("--typo", type=float, default=0.2)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    header, *rows = args.source.read_text(encoding="utf-8").splitlines()
    lines = [header]
    changed = 0
    for row in rows:
        sentence, label = row.rsplit("\t", 1)
        noised = noise(sentence, rng, args.drop, args.typo)
        changed += noised != sentence.strip()
        lines.append(f"{noised}\t{label}")
    args.target.parent.mkdir(parents=True, exist_ok=True)
    args.target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(rows)} rows, {changed} changed, written to {args.target}")


if __name__ == "__main__":
    main()
