"""How well the doctor's label-error detector finds labels flipped on purpose in SST-2.

A seeded subset of SST-2's training sentences (4,000 by default), 5% of their labels flipped
(seeded), then exactly what `tunesmith doctor` does: mean-pooled embeddings of the frozen
bundled MiniLM, 5-fold out-of-fold probabilities of a logistic regression, cleanlab's
`find_label_issues` ranked by self-confidence. Reports, for the top N flags, the share that
are flipped rows (precision) and the share of all flips they catch (recall).

    python bench/label_errors_sst2.py [--rows 4000] [--flip 0.05] [--seed 0] [--output FILE]

SST-2's own labels are not all right either: a flagged row that was not flipped is not
necessarily a false alarm (the output lists the top unflipped flags to look at).
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

from tunesmith.data.doctor.label_errors import embed, rank
from tunesmith.models.backbones import check_loadable

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "sst2" / "train.tsv"


def read_sst2(path: Path) -> list[tuple[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [(text.strip(), label) for text, label in rows[1:]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=SHARED)
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--flip", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--output", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    rng = np.random.default_rng(args.seed)
    everything = read_sst2(args.data)
    # Distinct sentences only, so that a flipped row's unflipped copy cannot give it away or hide it.
    unique = list(dict(everything).items())
    subset = [unique[i] for i in sorted(rng.choice(len(unique), args.rows, replace=False))]
    flipped = set(rng.choice(args.rows, round(args.flip * args.rows), replace=False).tolist())
    labels = [("1" if label == "0" else "0") if i in flipped else label for i, (_, label) in enumerate(subset)]

    start = time.perf_counter()
    features = embed([text for text, _ in subset], None, check_loadable("minilm"), 128)
    embedded = time.perf_counter() - start
    ranking = rank(labels, features, args.folds, args.seed)
    flagged = ranking.flagged
    figures = {
        "rows": args.rows,
        "flipped": len(flipped),
        "seed": args.seed,
        "embed_s": round(embedded, 1),
        "total_s": round(time.perf_counter() - start, 1),
        "out_of_fold_accuracy": round(ranking.accuracy, 4),
        "flagged": len(flagged),
        "recall_of_all_flags": round(len(flipped & set(flagged)) / len(flipped), 4),
        "precision_of_all_flags": round(len(flipped & set(flagged)) / max(len(flagged), 1), 4),
        "top": {},
    }
    for top in (25, 50, 100, 200, 400):
        caught = len(flipped & set(flagged[:top]))
        shown = min(top, len(flagged))
        figures["top"][top] = {
            "precision": round(caught / max(shown, 1), 4),
            "recall": round(caught / len(flipped), 4),
        }
    figures["top_unflipped_flags"] = [
        {"text": subset[i][0], "label": labels[i]} for i in flagged[:50] if i not in flipped
    ][:10]
    print(json.dumps(figures, indent=2))
    if args.output:
        args.output.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
