"""Continual learning, SST-2 -> AG News: how much of SST-2 each protection keeps, and what it costs AG News.

Trains the old run (bench/continual/sst2.yaml: 3,000 SST-2 rows, one epoch) once, then one AG News run
(bench/continual/agnews.yaml: 3,000 rows, one epoch, a new 4-class head on the SST-2 encoder) per variant
below. Every run scores SST-2 dev (872 rows) with the old head before and after (metrics.json `continual`),
and AG News on the 300 rows carved from its 3,000 (validation); then each model is scored on 2,000 seeded
AG News test rows (`--test-rows`). One seed (42); run with one thread:

    OMP_NUM_THREADS=1 nice -n 10 python bench/continual/run.py [--only none replay ...] [--score-only]

Prints a Markdown table of every variant measured so far and writes runs/continual-bench/results.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
OUT = REPO / "runs" / "continual-bench"
VARIANTS: dict[str, list[str]] = {
    "none": [],
    "replay": ["continual.replay=0.1"],
    "replay-0.3": ["continual.replay=0.3"],
    "ewc-1e4": ["continual.ewc=10000"],
    "ewc-1e5": ["continual.ewc=100000"],
    "l2sp-0.1": ["continual.l2sp=0.1"],
    "l2sp-1": ["continual.l2sp=1.0"],
    "replay+ewc-1e5": ["continual.replay=0.1", "continual.ewc=100000"],
}


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def train(config: Path, overrides: list[str]) -> dict:
    from tunesmith.api import finetune
    from tunesmith.config import load_config

    return finetune(load_config(config, assignments=overrides), overwrite=True).metrics


def test_rows(count: int, seed: int = 42) -> tuple[list[str], list[str]]:
    """A seeded sample of AG News test rows (the file quotes fields holding a double quote: read with csv)."""
    import csv
    import random

    with open(REPO.parent / "shared" / "data" / "agnews" / "test.tsv", newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    chosen = random.Random(seed).sample(rows, min(count, len(rows)))
    return [text for text, _ in chosen], [label for _, label in chosen]


def test_accuracy(run: Path, texts: list[str], labels: list[str]) -> float:
    import tunesmith

    predicted = tunesmith.load(run).predict(texts, batch_size=64)
    return sum(result["label"] == label for result, label in zip(predicted, labels, strict=True)) / len(labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--retrain-old", action="store_true", help="train the SST-2 run again even if it is there")
    parser.add_argument(
        "--test-rows",
        type=int,
        default=2000,
        help="score each model on this many seeded AG News test rows",
    )
    parser.add_argument("--score-only", action="store_true", help="only score the variants already trained on test")
    args = parser.parse_args()
    # Variants measured earlier stay in results.json beside the ones run now.
    saved = OUT / "results.json"
    results: dict = json.loads(saved.read_text()) if saved.is_file() else {}
    if args.retrain_old or not (OUT / "sst2" / "metrics.json").is_file():
        began = cpu_seconds()
        train(HERE / "sst2.yaml", [])
        results["old_run_cpu_s"] = round(cpu_seconds() - began, 1)
    old = json.loads((OUT / "sst2" / "metrics.json").read_text())
    results["old_run"] = {"sst2_dev_accuracy": old["validation"]["accuracy"]}
    texts, labels = test_rows(args.test_rows) if args.test_rows else ([], [])
    for name in args.only:
        if args.score_only:
            if name in results and texts:
                results[name]["agnews_test_accuracy"] = test_accuracy(OUT / f"agnews-{name}", texts, labels)
                results[name]["agnews_test_rows"] = len(texts)
            continue
        began, wall = cpu_seconds(), time.perf_counter()
        metrics = train(HERE / "agnews.yaml", [*VARIANTS[name], f"output_dir={OUT / ('agnews-' + name)}"])
        found = metrics["continual"]["old_task"]
        results[name] = {
            "overrides": VARIANTS[name],
            "sst2_before": found["before"]["accuracy"],
            "sst2_after": found["after"]["accuracy"],
            "forgetting": found["forgetting"],
            "agnews_accuracy": metrics["validation"]["accuracy"],
            "protection": metrics["continual"]["protection"],
            "train_time_s": metrics["training"]["train_time_s"],
            "cpu_s": round(cpu_seconds() - began, 1),
            "wall_s": round(time.perf_counter() - wall, 1),
        }
        if texts:
            results[name]["agnews_test_accuracy"] = test_accuracy(OUT / f"agnews-{name}", texts, labels)
            results[name]["agnews_test_rows"] = len(texts)
        print(json.dumps({name: results[name]}), file=sys.stderr, flush=True)
    saved.write_text(json.dumps(results, indent=2) + "\n")
    header = ["protection", "SST-2 dev before", "SST-2 dev after", "forgetting", "AG News validation", "AG News test"]
    print("| " + " | ".join([*header, "run CPU s", "train wall s"]) + " |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in [name for name in VARIANTS if name in results]:
        row = results[name]
        label = ", ".join(row["overrides"]) or "none"
        print(f"| {label} | {row['sst2_before']:.4f} | {row['sst2_after']:.4f} | {row['forgetting']:+.4f} | "
              f"{row['agnews_accuracy']:.4f} | {row.get('agnews_test_accuracy', float('nan')):.4f} | "
              f"{row['cpu_s']:.0f} | {row['train_time_s']:.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
