"""Optimizers, schedules and dropout overrides on real data: SST-2, a seeded 2,000-row subset of train, the
bundled MiniLM, dev accuracy and training time per choice (one seed each). Figures: docs/optimization.md.

    OMP_NUM_THREADS=1 nice -n 10 python bench/optimization.py [--variants adamw_linear,sgd_nesterov] \
        [--rows 2000] [--epochs 2] [--seed 42] [--output-dir runs/bench-optimization]

Each variant is `tunesmith.finetune` with the base recipe below plus its own config keys, trained one after
another in this process (the same threads for all). Prints a Markdown table and writes results.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sst2"
# Each variant's changes to the base config: (section, key) -> value.
VARIANTS: dict[str, dict[str, dict[str, Any]]] = {
    "adamw_linear": {},
    "adamw_cosine": {"training": {"scheduler": "cosine"}},
    "adamw_cosine_restarts": {"training": {"scheduler": "cosine_with_restarts", "cycles": 2}},
    "adamw_polynomial": {"training": {"scheduler": "polynomial", "power": 2.0}},
    "adamw_constant": {"training": {"scheduler": "constant", "warmup_steps": 6}},
    "adam_linear": {"training": {"optimizer": "adam"}},
    # Adam's decay is L2 (added to the gradient, then normalised): without it, to separate the two.
    "adam_no_decay": {"training": {"optimizer": "adam", "weight_decay": 0.0}},
    "adamw_no_decay": {"training": {"weight_decay": 0.0}},
    "sgd_nesterov": {"training": {"optimizer": "sgd", "momentum": 0.9, "nesterov": True, "learning_rate": 1e-2}},
    "rmsprop": {"training": {"optimizer": "rmsprop", "learning_rate": 2e-5}},
    "adafactor": {"training": {"optimizer": "adafactor", "learning_rate": 1e-3}},
    "dropout_0.2": {"regularization": {"hidden_dropout": 0.2, "attention_dropout": 0.2, "classifier_dropout": 0.2}},
    "dropout_0": {"regularization": {"hidden_dropout": 0.0, "attention_dropout": 0.0, "classifier_dropout": 0.0}},
}


def base_config(rows: int, epochs: int, seed: int, output: Path) -> dict[str, Any]:
    return {
        "model": "minilm",
        "output_dir": str(output),
        "data": {
            "train": str(DATA / "train.tsv"),
            "validation": str(DATA / "dev.tsv"),
            "text_column": "sentence",
            "max_train_rows": rows,
            # dev is the held-out split; nothing carved from train for a test split.
            "test_split": 0.0,
        },
        "training": {"epochs": epochs, "batch_size": 32, "learning_rate": 5e-5, "seed": seed, "logging_steps": 20},
        # What the comparison does not need: the data doctor, the baselines and explanations in report.md.
        "doctor": {"enabled": False},
        "report": {"baselines": False, "explained_errors": 0},
    }


def merged(base: dict[str, Any], changes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {**base, **{section: {**base.get(section, {}), **keys} for section, keys in changes.items()}}


def run_variant(name: str, args: argparse.Namespace) -> dict[str, Any]:
    import tunesmith

    config = merged(base_config(args.rows, args.epochs, args.seed, args.output_dir / name), VARIANTS[name])
    began, cpu_began = time.perf_counter(), time.process_time()
    run = tunesmith.finetune(config)
    wall, cpu = time.perf_counter() - began, time.process_time() - cpu_began
    training = run.metrics["training"]
    return {
        "variant": name,
        "changes": VARIANTS[name],
        "dev_accuracy": run.metrics["validation"]["accuracy"],
        "dev_loss": run.metrics["validation"]["loss"],
        "steps": training["steps"],
        "train_time_s": training["train_time_s"],
        "wall_s": wall,
        # CPU time of the whole run (loading, training, evaluation, saving): on a shared machine the fairer clock.
        "cpu_s": cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--output-dir", type=Path, default=Path("runs/bench-optimization"))
    args = parser.parse_args()
    names = [name.strip() for name in args.variants.split(",") if name.strip()]
    unknown = sorted(set(names) - VARIANTS.keys())
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    results = []
    for name in names:
        results.append(run_variant(name, args))
        print(json.dumps(results[-1]), flush=True)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print("\n| variant | config keys | dev accuracy | dev loss | steps | train time (s) | run CPU time (s) |")
    print("|---|---|---|---|---|---|---|")
    for row in results:
        keys = ", ".join(f"{s}.{k}={v}" for s, kv in row["changes"].items() for k, v in kv.items()) or "defaults"
        print(
            f"| {row['variant']} | {keys} | {row['dev_accuracy']:.4f} | {row['dev_loss']:.4f} | {row['steps']} "
            f"| {row['train_time_s']:.1f} | {row['cpu_s']:.1f} |"
        )


if __name__ == "__main__":
    main()
