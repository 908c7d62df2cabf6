"""Plain cross-entropy against class weights and focal loss on SST-2 drawn 10:1 (docs/losses.md).

    python bench/imbalance/make_imbalanced_sst2.py
    python bench/imbalance/compare_losses.py [--variants ce inverse focal] [--seeds 1 2 3]

Each variant trains bench/imbalance/sst2_10to1.yaml with its loss overrides, once per seed, one
`tunesmith train` process at a time, and is scored on the balanced SST-2 dev set (the config's
test split; nothing is selected on it). Results are added to bench/imbalance/results.json (a run
already there is not repeated) and the table of mean ± sample std over seeds is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CONFIG = HERE / "sst2_10to1.yaml"
RESULTS = HERE / "results.json"
VARIANTS: dict[str, list[str]] = {
    "ce": [],
    "inverse": ["loss.class_weights=inverse"],
    "effective": ["loss.class_weights=effective", "loss.beta=0.999"],
    "focal": ["loss.name=focal", "loss.gamma=2"],
    "focal_g1": ["loss.name=focal", "loss.gamma=1"],
    "focal_alpha": ["loss.name=focal", "loss.gamma=2", "loss.alpha=0.25"],
    # Is plain cross-entropy only short of training? One more epoch.
    "ce_3_epochs": ["training.epochs=3"],
}


def train(variant: str, seed: int) -> dict:
    out = ROOT / "bench" / "out" / "imbalance" / "runs" / f"{variant}-s{seed}"
    command = [sys.executable, "-m", "tunesmith", "train", str(CONFIG), *VARIANTS[variant]]
    command += [f"training.seed={seed}", "--output-dir", str(out), "--overwrite"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT / "src")}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    test = json.loads((out / "metrics.json").read_text())["test"]
    return {
        "variant": variant,
        "seed": seed,
        "overrides": VARIANTS[variant],
        "f1_macro": test["f1_macro"],
        "accuracy": test["accuracy"],
        "recall_negative": test["per_class"]["0"]["recall"],
        "recall_positive": test["per_class"]["1"]["recall"],
        "cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1),
    }


def table(results: list[dict]) -> str:
    lines = [
        "| loss | overrides | macro-F1 | accuracy | recall neg | recall pos | seeds |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for variant in VARIANTS:
        rows = [r for r in results if r["variant"] == variant]
        if not rows:
            continue

        def cell(key: str, rows: list[dict] = rows) -> str:
            values = [r[key] for r in rows]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            return f"{statistics.mean(values):.3f} ± {spread:.3f}"

        overrides = " ".join(f"`{o}`" for o in VARIANTS[variant]) or "(none)"
        seeds = ",".join(str(r["seed"]) for r in rows)
        lines.append(
            f"| {variant} | {overrides} | {cell('f1_macro')} | {cell('accuracy')} | {cell('recall_negative')} "
            f"| {cell('recall_positive')} | {seeds} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=["ce", "inverse", "focal"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    args = parser.parse_args()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    for seed in args.seeds:
        for variant in args.variants:
            if any(r["variant"] == variant and r["seed"] == seed for r in results):
                continue
            result = train(variant, seed)
            print(json.dumps(result), flush=True)
            results.append(result)
            RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
