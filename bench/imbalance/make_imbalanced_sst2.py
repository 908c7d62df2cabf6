"""An imbalanced SST-2 training set: positives and negatives drawn 10:1 (seeded) from SST-2 train.

    python bench/imbalance/make_imbalanced_sst2.py [--positives 2000] [--negatives 200] [--seed 0]
        [--source ../shared/data/sst2/train.tsv] [--out bench/out/imbalance/train.tsv]

Sentences that occur more than once in SST-2 train (371, five of them with both labels) are left
out, so no sentence is drawn twice or with two labels. The dev set (balanced: 428 negative, 444
positive) stays as it is for scoring. The rows are written in the source's format (tsv, header
`sentence label`), shuffled.
"""

from __future__ import annotations

import argparse
import random
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def read_rows(path: Path) -> list[tuple[str, str]]:
    # No quoting in SST-2: a plain split on the tab (SOURCE.md).
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    return [tuple(line.split("\t")) for line in lines if line]


def draw(rows: list[tuple[str, str]], positives: int, negatives: int, seed: int) -> list[tuple[str, str]]:
    seen = Counter(sentence for sentence, _ in rows)
    unique = [row for row in rows if seen[row[0]] == 1]
    rng = random.Random(seed)
    chosen = rng.sample([r for r in unique if r[1] == "1"], positives)
    chosen += rng.sample([r for r in unique if r[1] == "0"], negatives)
    rng.shuffle(chosen)
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=ROOT.parent / "shared" / "data" / "sst2" / "train.tsv")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "imbalance" / "train.tsv")
    parser.add_argument("--positives", type=int, default=2000)
    parser.add_argument("--negatives", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows = draw(read_rows(args.source), args.positives, args.negatives, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("sentence\tlabel\n" + "".join(f"{s}\t{label}\n" for s, label in rows), encoding="utf-8")
    counts = Counter(label for _, label in rows)
    print(f"{args.out}: {len(rows)} rows, positive {counts['1']}, negative {counts['0']}")


if __name__ == "__main__":
    main()
