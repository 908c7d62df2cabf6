"""Prompt-based fine-tuning (PET, `method: cloze`) against standard fine-tuning on SST-2, 16 examples per class.

Every arm is `tunesmith fewshot configs/sst2-cloze.yaml --shots 16 --seeds 5` with overrides: the same
training rows per seed (data.shots_per_class with training.seed), the same training section (20 epochs
of batches of 8, learning rate 5e-5, fixed before any run was scored: 16 examples per class leave no
dev set to tune on), scored once on all 872 SST-2 dev sentences.

- cloze-tapt: the label is the masked-LM head's choice between "great" and "terrible" in
  "{text} It was [MASK]." (no new weights), on MiniLM after task-adaptive masked-LM pretraining;
- finetune-tapt: the same model with a new classifier head (does the prompt help, model held fixed?);
- finetune-minilm: the bundled MiniLM with a new classifier head (what a user gets without pretraining).

Plus zero-shot cloze (the adapted model as it is, no training), raw and with contextual calibration
(Zhao et al. 2021: each label's probability divided by its probability for the content-free text "N/A").

The masked-LM model comes first (15 minutes of one thread; MiniLM ships without an MLM head):

    tunesmith pretrain bench/pretraining/tapt_sst2.yaml --output-dir runs/minilm-tapt-sst2
    OMP_NUM_THREADS=1 nice -n 19 python bench/prompt_vs_finetune_sst2.py

Runs that already finished in the output folder are read back, not retrained (as `tunesmith fewshot`).
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "sst2-cloze.yaml"
ARMS = {
    "cloze-tapt": ["method=cloze"],
    "finetune-tapt": ["method=finetune"],
    "finetune-minilm": ["method=finetune", "model=minilm"],
}


def assignments(arm: str, model: str) -> list[str]:
    return [f"model={model}", *ARMS[arm]]


def finished_rows(arm: str, model: str, shots: int, seeds: list[int], folder: Path) -> list[dict]:
    """The rows `tunesmith fewshot` tabulates, for the seeds whose run finished (an interrupted bench)."""
    from tunesmith.config import load_config
    from tunesmith.fewshot.repeat import row
    from tunesmith.runs import read_status

    rows = []
    for seed in seeds:
        run = folder / f"{shots}shot-seed{seed}"
        if read_status(run) == "finished":
            placement = [f"data.shots_per_class={shots}", f"training.seed={seed}", f"output_dir={run}"]
            rows.append(row(shots, seed, load_config(CONFIG, assignments=[*assignments(arm, model), *placement])))
    return rows


def read_dev(path: Path) -> tuple[list[str], np.ndarray]:
    # SST-2's tsv has no quoting: a quote character is part of the sentence.
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [row["sentence"] for row in rows], np.array([int(row["label"]) for row in rows])


def calibrate(probabilities: np.ndarray, content_free: np.ndarray) -> np.ndarray:
    """Contextual calibration: divide out the label prior the template alone gives, renormalise."""
    scaled = probabilities / content_free
    return scaled / scaled.sum(axis=1, keepdims=True)


def zero_shot(model: str, template: str, words: dict[str, str], dev: Path, max_length: int) -> dict[str, float]:
    from tunesmith.fewshot.cloze import ClozeClassifier

    texts, truth = read_dev(dev)
    started = time.process_time()
    classifier = ClozeClassifier.from_backbone(model, template, words, ["0", "1"], max_length)
    probabilities = classifier.probabilities(texts)
    prior = classifier.probabilities(["N/A"])[0]
    calibrated = calibrate(probabilities, prior)
    return {
        "accuracy": float((probabilities.argmax(axis=1) == truth).mean()),
        "positive_share": float(probabilities.argmax(axis=1).mean()),
        "calibrated_accuracy": float((calibrated.argmax(axis=1) == truth).mean()),
        "content_free_probabilities": [float(value) for value in prior],
        "cpu_s": round(time.process_time() - started, 1),
    }


def paired(first: list[float], second: list[float]) -> str:
    """Mean ± std of the per-seed differences (same training rows on both sides)."""
    differences = [a - b for a, b in zip(first, second, strict=True)]
    spread = statistics.stdev(differences) if len(differences) > 1 else 0.0
    return f"{statistics.mean(differences):+.4f} ± {spread:.4f}"


def mean_std(values: list[float], digits: int = 4) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {spread:.{digits}f}"


def cpu_figures(rows: list[dict]) -> str:
    measured = [row for row in rows if row.get("cpu_s") is not None]
    if not measured:
        return ""
    seeds = ", ".join(str(row["seed"]) for row in measured)
    return f"{mean_std([row['cpu_s'] for row in measured], 1)} ({seeds})"


def table(results: dict) -> str:
    lines = [
        "| arm | model | method | seeds | dev accuracy (mean ± std) | per seed | training s (mean ± std) "
        "| CPU s per run (seeds) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for arm, entry in results["arms"].items():
        accuracies = [row["validation"] for row in entry["rows"]]
        times = [row["train_time_s"] for row in entry["rows"]]
        seeds = ", ".join(str(row["seed"]) for row in entry["rows"])
        each = " ".join(f"{value:.3f}" for value in accuracies)
        lines.append(
            f"| {arm} | {entry['model']} | {entry['rows'][0]['method']} | {seeds} | {mean_std(accuracies)} | {each} "
            f"| {mean_std(times, 1)} | {cpu_figures(entry['rows'])} |"
        )
    arms = results["arms"]
    if "cloze-tapt" in arms:
        cloze = [row["validation"] for row in arms["cloze-tapt"]["rows"]]
        for other in ("finetune-tapt", "finetune-minilm"):
            if other in arms and len(arms[other]["rows"]) == len(cloze):
                difference = paired(cloze, [row["validation"] for row in arms[other]["rows"]])
                lines.append(f"\ncloze-tapt − {other}, per seed: {difference}")
    if "zero_shot" in results:
        shot = results["zero_shot"]
        lines.append(
            f"\nzero-shot cloze (no training): {shot['accuracy']:.4f} ({shot['positive_share']:.1%} predicted "
            f'positive); calibrated on "N/A": {shot["calibrated_accuracy"]:.4f}'
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="runs/minilm-tapt-sst2/model", help="the masked-LM model (a folder)")
    parser.add_argument("--shots", type=int, default=16, help="examples per class (default 16)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5)")
    parser.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated, of {', '.join(ARMS)}")
    parser.add_argument("--no-zero-shot", action="store_true", help="skip the zero-shot cloze line")
    parser.add_argument("--summarize", action="store_true", help="only tabulate the runs that finished; train none")
    parser.add_argument("--output-dir", type=Path, default=Path("bench/out/prompt_sst2"))
    args = parser.parse_args()

    from tunesmith.config import load_config
    from tunesmith.fewshot.repeat import sweep
    from tunesmith.runs import read_status

    base = load_config(CONFIG, assignments=[f"model={args.model}"])
    arms, seeds = args.arms.split(","), list(range(args.seeds))
    cpu_file = args.output_dir / "cpu_seconds.json"
    # CPU seconds of each (arm, seed) run this script trained: loading, training and scoring, one thread.
    # Kept across invocations, since a finished run is read back and costs nothing the second time.
    cpu = json.loads(cpu_file.read_text(encoding="utf-8")) if cpu_file.is_file() else {}
    # Seed by seed, every arm in turn: an interrupted bench leaves paired results (same rows, both methods).
    for seed in [] if args.summarize else seeds:
        for arm in arms:
            trains = read_status(args.output_dir / arm / f"{args.shots}shot-seed{seed}") != "finished"
            started = time.process_time()
            sweep(CONFIG, assignments(arm, args.model), [args.shots], [seed], args.output_dir / arm)
            if trains:
                cpu[f"{arm}/{seed}"] = round(time.process_time() - started, 1)
                args.output_dir.mkdir(parents=True, exist_ok=True)
                cpu_file.write_text(json.dumps(cpu, indent=2) + "\n", encoding="utf-8")
    results: dict = {"shots": args.shots, "config": str(CONFIG.relative_to(ROOT)), "arms": {}}
    for arm in arms:
        if args.summarize:
            rows = finished_rows(arm, args.model, args.shots, seeds, args.output_dir / arm)
        else:
            _, rows = sweep(CONFIG, assignments(arm, args.model), [args.shots], seeds, args.output_dir / arm)
        if not rows:
            continue
        for row in rows:
            row["cpu_s"] = cpu.get(f"{arm}/{row['seed']}")
        model = "minilm" if "model=minilm" in ARMS[arm] else args.model
        results["arms"][arm] = {"model": model, "rows": rows}
    shot_file = args.output_dir / "zero_shot.json"
    if shot_file.is_file():
        results["zero_shot"] = json.loads(shot_file.read_text(encoding="utf-8"))
    elif not (args.no_zero_shot or args.summarize):
        words = {str(key): value for key, value in (base.cloze.verbalizer or {}).items()}
        results["zero_shot"] = zero_shot(
            args.model, base.cloze.template, words, Path(base.data.validation), base.training.max_length
        )
        shot_file.write_text(json.dumps(results["zero_shot"], indent=2) + "\n", encoding="utf-8")
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (args.output_dir / "table.md").write_text(table(results), encoding="utf-8")
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
