"""Plain fine-tuning against adversarial training on SST-2: clean dev accuracy, and accuracy on a noised dev set.

Each run is `tunesmith train` in its own process (one thread), on a seeded subset of SST-2's train set, scored
on the GLUE dev set (validation) and on its noised copy from noise_dev.py (test). Prints a markdown table and
writes every run's figures to OUT/results.json. Commands and figures: bench/RESULTS.md, docs/adversarial.md.

    python bench/adversarial/noise_dev.py ../shared/data/sst2/dev.tsv /tmp/adv-bench/dev_noised.tsv --seed 0
    python bench/adversarial/run.py --out /tmp/adv-bench --methods none,fgm --seeds 42,7,13 --train-rows 5000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("TUNESMITH_SHARED_DATA", REPO.parent / "shared" / "data"))


def config(method: str, seed: int, args: argparse.Namespace, run_dir: Path) -> dict:
    sst2 = args.data_dir / "sst2"
    return {
        "name": run_dir.name,
        "output_dir": str(run_dir),
        "model": "minilm",
        "data": {
            "train": str(sst2 / "train.tsv"),
            "validation": str(sst2 / "dev.tsv"),
            "test": str(args.noised),
            "text_column": "sentence",
            "max_train_rows": args.train_rows,
        },
        "training": {
            "epochs": args.epochs,
            "max_length": 64,
            "seed": seed,
            "logging_steps": 50,
            **({"learning_rate": args.learning_rate} if args.learning_rate else {}),
            "save_steps": None,
            # One epoch: the final evaluation is the one that counts, and the last model is the one scored.
            "eval_each_epoch": False,
        },
        "adversarial": {"method": method, "epsilon": args.epsilon, "alpha": args.alpha, "steps": args.steps},
        "rdrop": {"alpha": args.rdrop_alpha},
        # Only the figures compared here: no data doctor, baselines or explained errors.
        "doctor": {"enabled": False},
        "report": {"baselines": False, "explained_errors": 0},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--noised", type=Path, default=None, help="the noised dev set (default OUT/dev_noised.tsv)")
    parser.add_argument("--data-dir", type=Path, default=SHARED_DATA, help="the shared data (holding sst2/)")
    parser.add_argument(
        "--also", action="append", default=[], metavar="NAME=FILE", help="another noised dev set to score each run on"
    )
    parser.add_argument("--methods", default="none,fgm")
    parser.add_argument("--seeds", default="42")
    parser.add_argument("--train-rows", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--alpha", type=float, default=0.3)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rdrop-alpha", type=float, default=0.0, help="R-Drop's weight (0: off)")
    parser.add_argument("--table-only", action="store_true", help="print the table of OUT/results.json; run nothing")
    parser.add_argument("--learning-rate", type=float, default=None, help="default: the project's (5e-5, full)")
    args = parser.parse_args()
    args.noised = args.noised or args.out / "dev_noised.tsv"
    results_path = args.out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else []
    if args.table_only:
        print(table(results))
        return
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    # Seed by seed, all methods for each: a budget cut short still leaves comparable pairs.
    for seed in [int(s) for s in args.seeds.split(",")]:
        for method in args.methods.split(","):
            label = method + (f"@lr{args.learning_rate:g}" if args.learning_rate else "")
            label += f"+rdrop{args.rdrop_alpha:g}" if args.rdrop_alpha else ""
            # Settings away from the defaults name the run, so that a new setting never overwrites another's results.
            if method != "none":
                label += f"+eps{args.epsilon:g}" if args.epsilon != 1.0 else ""
                label += f"+alpha{args.alpha:g}" if args.alpha != 0.3 else ""
            label += f"+epochs{args.epochs}" if args.epochs != 1 else ""
            run_dir = args.out / "runs" / f"{label.replace('@', '-').replace('+', '-')}-seed{seed}"
            config_path = args.out / "configs" / f"{run_dir.name}.yaml"
            config_path.parent.mkdir(parents=True, exist_ok=True)
            config_path.write_text(yaml.safe_dump(config(method, seed, args, run_dir)))
            began = time.perf_counter()
            command = [sys.executable, "-m", "tunesmith", "train", str(config_path), "--overwrite"]
            subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
            wall = time.perf_counter() - began
            metrics = json.loads((run_dir / "metrics.json").read_text())
            training = metrics["training"]
            also = {}
            for name, path in (item.split("=", 1) for item in args.also):
                scored = args.out / "configs" / f"{run_dir.name}-{name}.json"
                evaluate = [sys.executable, "-m", "tunesmith", "evaluate", str(run_dir), "--data", path]
                subprocess.run([*evaluate, "--output", str(scored)], check=True, env=env, stdout=subprocess.DEVNULL)
                also[name] = json.loads(scored.read_text())["accuracy"]
            row = {
                "method": label, "seed": seed, "train_rows": args.train_rows, "epochs": args.epochs,
                "dev_accuracy": metrics["validation"]["accuracy"], "noised_accuracy": metrics["test"]["accuracy"],
                "train_time_s": training["train_time_s"], "wall_s": round(wall, 1),
                "adversarial": training.get("adversarial"), "also": also,
            }  # fmt: skip
            print(json.dumps(row), flush=True)
            results = [r for r in results if (r["method"], r["seed"]) != (label, seed)] + [row]
            results_path.write_text(json.dumps(results, indent=1))
            # The saved model is not needed for the figures, and each is about 90 MB.
            for heavy in (run_dir / "model", run_dir / "checkpoints"):
                subprocess.run(["rm", "-rf", str(heavy)], check=True)
    print(table(results))


def table(results: list[dict]) -> str:
    """One row per method: accuracies by seed with their mean, the training time and the passes per batch."""
    scored = [("dev", "dev_accuracy"), ("test set (--noised)", "noised_accuracy")]
    scored += [(f"{name} noise", name) for name in results[0].get("also", {})] if results else []
    header = " | ".join(f"{name} accuracy by seed (mean)" for name, _ in scored)
    lines = [
        f"| method | seeds | {header} | train time s (mean) | passes per batch (fwd/bwd) |",
        "|---" * (len(scored) + 4) + "|",
    ]
    for method in dict.fromkeys(r["method"] for r in results):
        rows = [r for r in results if r["method"] == method]
        cells = []
        for _, key in scored:
            values = [r[key] if key in r else r["also"][key] for r in rows]
            cells.append(f"{', '.join(f'{v:.4f}' for v in values)} ({statistics.mean(values):.4f})")
        report = rows[0]["adversarial"] or {"forward_passes_relative": 1.0, "backward_passes_relative": 1.0}
        lines.append(
            f"| {method} | {','.join(str(r['seed']) for r in rows)} | {' | '.join(cells)} "
            f"| {statistics.mean(r['train_time_s'] for r in rows):.0f} "
            f"| {report['forward_passes_relative']}/{report['backward_passes_relative']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
