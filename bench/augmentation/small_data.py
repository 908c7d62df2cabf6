"""Augmentation at small data: SST-2 with 200 and 1,000 training rows, with and without augmentation.

For each size and seed, a seeded sample of ../shared/data/sst2/train.tsv (numpy default_rng(seed),
without replacement) is written to a temporary TSV; the bundled MiniLM is fine-tuned on it twice,
once as it is and once with `augmentation:` (the same seed for the sample, the model's head, the
batches and the augmentation), and scored on the whole SST-2 dev set (872 rows). Prints and writes
dev accuracy per run and mean ± standard deviation (ddof 1) per size and arm.

The augmented runs take more optimizer steps (the same epochs over about 2.7 times the rows), so a
third arm, "matched", trains on the plain sample for as many steps as the augmented run of the same
size and seed (training.max_steps): more steps alone, against more steps with edited rows.
`--arms matched --steps-from FILE` runs only that arm, taking the step counts from an earlier
output, whose runs it keeps in its own output.

    OMP_NUM_THREADS=1 nice -n 10 python bench/augmentation/small_data.py            # the figures in bench/RESULTS.md
    OMP_NUM_THREADS=1 nice -n 10 python bench/augmentation/small_data.py --sizes 200 --seeds 1   # a quick look
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "sst2"


def read_tsv(path: Path) -> list[tuple[str, str]]:
    # No quoting in SST-2 (its README): split each line on the tab.
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    return [tuple(line.rsplit("\t", 1)) for line in lines if line.strip()]  # type: ignore[misc]


def write_sample(rows: list[tuple[str, str]], size: int, seed: int, path: Path) -> Path:
    chosen = np.random.default_rng(seed).choice(len(rows), size=size, replace=False)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("sentence\tlabel\n")
        handle.writelines(f"{rows[i][0].strip()}\t{rows[i][1]}\n" for i in sorted(chosen))
    return path


def run_once(
    train: Path, seed: int, augmentation: dict | None, args: argparse.Namespace, folder: Path, max_steps: int | None
) -> dict:
    import tunesmith

    config = {
        "output_dir": str(folder),
        "data": {
            "train": str(train),
            "validation": str(DATA / "dev.tsv"),
            "format": "tsv",
            "text_column": "sentence",
            "test_split": 0.0,
        },
        "training": {
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "learning_rate": args.learning_rate,
            "max_length": 64,
            "seed": seed,
            "eval_each_epoch": False,
            "save_steps": None,
            "max_steps": max_steps,
        },
        "doctor": {"enabled": False},
        "report": {"baselines": False, "explained_errors": 0},
    }
    if augmentation:
        config["augmentation"] = augmentation
    if max_steps is not None:
        # Enough epochs for max_steps to end the run (and shape its learning-rate schedule).
        config["training"]["epochs"] = 1000
    started = time.process_time()
    run = tunesmith.finetune(config, overwrite=True)
    return {
        "accuracy": run.metrics["validation"]["accuracy"],
        "train_rows": run.metrics["training"]["examples"]["train"],
        "steps": run.metrics["training"]["steps"],
        "cpu_seconds": round(time.process_time() - started, 1),
    }


def steps_of(rows: int, args: argparse.Namespace) -> int:
    return -(-rows // args.batch_size) * args.epochs


def summary(values: list[float]) -> dict:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": statistics.fmean(values), "std": spread, "n": len(values)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="200,1000", help="training rows per sample (default 200,1000)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--operations", default="swap,delete,insert,synonym,cutoff")
    parser.add_argument("--alpha", type=float, default=0.1)
    parser.add_argument("--copies", type=int, default=2, help="augmented rows per training row (default 2)")
    parser.add_argument("--arms", default="plain,augmented,matched", help="which arms to run, of these three")
    parser.add_argument("--steps-from", help="an earlier output holding the augmented runs (for --arms matched)")
    parser.add_argument("--output", default="bench/augmentation/small_data.json")
    args = parser.parse_args()
    arms = args.arms.split(",")
    import torch

    torch.set_num_threads(1)
    if not DATA.exists():
        print(f"needs {DATA} (the shared benchmark data beside the checkout)")
        return 1
    rows = read_tsv(DATA / "train.tsv")
    augmentation = {"operations": args.operations.split(","), "alpha": args.alpha, "copies": args.copies}
    results: dict = {"settings": {k: v for k, v in vars(args).items() if k != "output"}, "runs": [], "summary": {}}
    if args.steps_from:
        results["runs"] = json.loads(Path(args.steps_from).read_text())["runs"]
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        for size in [int(size) for size in args.sizes.split(",")]:
            for seed in range(args.seeds):
                train = write_sample(rows, size, seed, folder / f"train-{size}-{seed}.tsv")
                for arm in arms:
                    steps = None
                    if arm == "matched":
                        # Outputs from before runs recorded their steps: one epoch is ceil(rows / batch) steps.
                        steps = next(
                            r.get("steps") or steps_of(r["train_rows"], args)
                            for r in results["runs"]
                            if (r["size"], r["seed"], r["arm"]) == (size, seed, "augmented")
                        )
                    options = augmentation if arm == "augmented" else None
                    measured = run_once(train, seed, options, args, folder / "run", steps)
                    results["runs"].append({"size": size, "seed": seed, "arm": arm, **measured})
                    print(json.dumps(results["runs"][-1]), flush=True)
                    write(results, args.output)  # each run as it ends: an interrupted bench keeps what it measured
    for size in sorted({run["size"] for run in results["runs"]}):
        for arm in ("plain", "augmented", "matched"):
            values = [r["accuracy"] for r in results["runs"] if r["size"] == size and r["arm"] == arm]
            if not values:
                continue
            results["summary"][f"{size}/{arm}"] = summary(values)
            figures = results["summary"][f"{size}/{arm}"]
            print(
                f"{size:>5} rows  {arm:<10} dev accuracy {figures['mean']:.4f} ± {figures['std']:.4f} (n={len(values)})"
            )
    write(results, args.output)
    return 0


def write(results: dict, output: str) -> None:
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    Path(output).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
