"""Active learning, simulated: hide the labels of a labelled pool, query them in rounds, retrain, score.

AG News (../shared/data/agnews): a seeded pool of training rows whose labels are hidden, and the first
N/4 test rows of each class. The model is the bundled MiniLM's sentence embeddings (computed once) with
a logistic-regression head, refitted after every round; each strategy of `tunesmith select`
(tunesmith.fewshot.select.choose) picks the next rows to label. Starts from `--start` random labels and
adds `--step` per round up to `--stop`; mean and standard deviation over seeds; writes a plot.

    OMP_NUM_THREADS=1 nice python bench/active_learning.py --seeds 3
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fewshot_vs_setfit import DATA, read, test_rows  # noqa: E402

STRATEGIES = ("random", "entropy", "margin", "diversity")


def simulate(
    pool: np.ndarray,
    pool_y: np.ndarray,
    test: np.ndarray,
    test_y: np.ndarray,
    by: str,
    seed: int,
    args: argparse.Namespace,
) -> list[tuple[int, float]]:
    from tunesmith.fewshot.head import LinearHead, softmax
    from tunesmith.fewshot.select import choose

    classes = int(pool_y.max()) + 1
    labelled = list(np.random.default_rng(seed).choice(len(pool), size=args.start, replace=False))
    curve = []
    while True:
        head = LinearHead.fit(pool[labelled], pool_y[labelled], classes, c=1.0, seed=seed)
        curve.append((len(labelled), float((head.logits(test).argmax(axis=1) == test_y).mean())))
        if len(labelled) >= args.stop:
            return curve
        rest = np.setdiff1d(np.arange(len(pool)), labelled)
        probabilities = softmax(head.logits(pool[rest]))
        chosen, _ = choose(by, args.step, seed, len(rest), probabilities=probabilities, embeddings=pool[rest])
        labelled.extend(int(rest[index]) for index in chosen)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pool", type=int, default=2000, help="training rows whose labels are hidden (default 2000)")
    parser.add_argument("--test-rows", type=int, default=1000, help="test rows, N/4 per class (default 1000)")
    parser.add_argument("--start", type=int, default=40)
    parser.add_argument("--step", type=int, default=40)
    parser.add_argument("--stop", type=int, default=400)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--output", default="bench/out/active_learning.json")
    parser.add_argument("--plot", default="docs/active_learning.png")
    args = parser.parse_args()
    from tunesmith.fewshot.encoder import SentenceEncoder

    train, test = read(DATA / "train.tsv"), test_rows(read(DATA / "test.tsv"), args.test_rows)
    names = sorted({label for _, label in train})
    rows = np.random.default_rng(1234).choice(len(train), size=args.pool, replace=False)
    encoder = SentenceEncoder.from_backbone("minilm", 128)
    started = time.perf_counter()
    pool = encoder.embed([train[i][0] for i in rows])
    pool_y = np.array([names.index(train[i][1]) for i in rows])
    test_x, test_y = encoder.embed([t for t, _ in test]), np.array([names.index(label) for _, label in test])
    print(f"embedded {len(pool)} pool and {len(test)} test rows in {time.perf_counter() - started:.0f} s", flush=True)
    curves = {
        by: [simulate(pool, pool_y, test_x, test_y, by, seed, args) for seed in range(args.seeds)] for by in STRATEGIES
    }
    result = {"pool": args.pool, "test_rows": len(test), "seeds": args.seeds, "curves": curves}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2))
    labels = [count for count, _ in curves["random"][0]]
    print("| labels | " + " | ".join(STRATEGIES) + " |\n|---|" + "---|" * len(STRATEGIES))
    for position, count in enumerate(labels):
        cells = []
        for by in STRATEGIES:
            scores = [curve[position][1] for curve in curves[by]]
            cells.append(f"{np.mean(scores):.4f} ± {np.std(scores, ddof=1):.4f}")
        print(f"| {count} | " + " | ".join(cells) + " |")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    for by in STRATEGIES:
        scores = np.array([[score for _, score in curve] for curve in curves[by]])
        mean, spread = scores.mean(axis=0), scores.std(axis=0, ddof=1)
        axes.plot(labels, mean, marker="o", markersize=3, label=by)
        axes.fill_between(labels, mean - spread, mean + spread, alpha=0.15)
    axes.set_xlabel("labelled examples")
    axes.set_ylabel(f"test accuracy ({len(test)} AG News rows)")
    axes.set_title(f"Active learning, MiniLM embeddings + logistic regression, {args.seeds} seeds")
    axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(args.plot, dpi=110)
    print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
