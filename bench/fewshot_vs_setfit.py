"""Few-shot contrastive fine-tuning: tunesmith against the `setfit` library on AG News, in one run.

Both start from the bundled all-MiniLM-L6-v2, train on the same k examples per class (drawn by
tunesmith.data.sampling with the same seeds), fit a logistic-regression head, and are scored on the
same test rows. Training time is the encoder's tuning plus the head's fit (embedding the k-shot
texts included), measured around each library's own call; embedding the test rows is not in it.
Zero-shot accuracy (label prompts, no training) is measured once.

setfit is a bench extra, not a dependency: pip install -e '.[bench]'.

    OMP_NUM_THREADS=1 nice python bench/fewshot_vs_setfit.py --shots 8,64 --seeds 5
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "agnews"
# AG News' classes in the words a prompt reads best (names as the data writes them on the left).
DESCRIPTIONS = {"World": "world news", "Sports": "sports", "Business": "business", "Sci/Tech": "science and technology"}
TEMPLATES = ["This text is about {label}."]


def read(path: Path) -> list[tuple[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return [(row[0], row[1]) for row in csv.reader(handle, delimiter="\t")]


def test_rows(rows: list[tuple[str, str]], count: int) -> list[tuple[str, str]]:
    """The first `count` / 4 rows of each class, in file order (all rows when count is 0)."""
    if not count:
        return rows
    taken: dict[str, int] = {}
    kept = []
    for text, label in rows:
        if taken.get(label, 0) < count // 4:
            taken[label] = taken.get(label, 0) + 1
            kept.append((text, label))
    return kept


def tunesmith_run(
    texts: list[str], targets: np.ndarray, seed: int, max_length: int
) -> tuple[object, tuple[float, float]]:
    from tunesmith.config import ContrastiveOptions
    from tunesmith.fewshot.contrastive import ContrastiveSettings, fit_encoder
    from tunesmith.fewshot.encoder import SentenceEncoder
    from tunesmith.fewshot.head import LinearHead

    options = ContrastiveOptions()
    encoder = SentenceEncoder.from_backbone("minilm", max_length)
    settings = ContrastiveSettings(
        epochs=options.epochs,
        batch_size=options.batch_size,
        learning_rate=options.learning_rate,
        warmup_ratio=options.warmup_ratio,
        seed=seed,
    )
    start, cpu = time.perf_counter(), time.process_time()
    fit_encoder(encoder, texts, list(targets), settings)
    head = LinearHead.fit(encoder.embed(texts), targets, 4, options.head_c, seed)
    seconds = (time.perf_counter() - start, time.process_time() - cpu)
    return (lambda batch: head.logits(encoder.embed(batch)).argmax(axis=1)), seconds


def setfit_run(
    texts: list[str], targets: np.ndarray, seed: int, max_length: int, iterations: int | None
) -> tuple[object, tuple[float, float]]:
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    from tunesmith.models.backbones import resolve

    model = SetFitModel.from_pretrained(resolve("minilm"), device="cpu")
    # Its checkpoints go to a temporary folder, not checkpoints/ in the working directory (its default).
    arguments = TrainingArguments(
        output_dir=tempfile.mkdtemp(prefix="setfit-bench-"),
        batch_size=16,
        num_epochs=1,
        num_iterations=iterations,
        seed=seed,
        max_length=max_length,
        report_to="none",
    )
    dataset = Dataset.from_dict({"text": texts, "label": [int(t) for t in targets]})
    trainer = Trainer(model=model, args=arguments, train_dataset=dataset)
    start, cpu = time.perf_counter(), time.process_time()
    trainer.train()
    seconds = (time.perf_counter() - start, time.process_time() - cpu)
    return (lambda batch: np.asarray(model.predict(batch, batch_size=64))), seconds


def zero_shot(test: list[str], truth: np.ndarray, names: list[str], max_length: int) -> dict[str, float]:
    from tunesmith.fewshot.encoder import SentenceEncoder
    from tunesmith.fewshot.zero_shot import zero_shot_head

    encoder = SentenceEncoder.from_backbone("minilm", max_length)
    embedded = encoder.embed(test)
    found = {}
    for name, descriptions in (("label names", None), ("descriptions", DESCRIPTIONS)):
        head = zero_shot_head(encoder, names, descriptions, TEMPLATES)
        found[name] = float((head.logits(embedded).argmax(axis=1) == truth).mean())
    return found


def summary(values: list[float], digits: int = 4) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {spread:.{digits}f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shots", default="8,64", help="examples per class, comma-separated (default 8,64)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5)")
    parser.add_argument(
        "--test-rows", type=int, default=0, help="score on the first N/4 test rows of each class (0: all 7,600)"
    )
    parser.add_argument("--max-length", type=int, default=128, help="tokens per text for both (default 128)")
    parser.add_argument(
        "--setfit-iterations",
        type=int,
        default=None,
        help="setfit's num_iterations (pairs per example); default: the library's own (oversampling every pair)",
    )
    parser.add_argument("--only", choices=("tunesmith", "setfit"), help="run one side only")
    parser.add_argument("--no-zero-shot", action="store_true", help="skip the zero-shot accuracy")
    parser.add_argument("--output", default="bench/out/fewshot_vs_setfit.json")
    parser.add_argument("--summarize", nargs="+", metavar="JSON", help="only print the table of earlier outputs")
    args = parser.parse_args()
    if args.summarize:
        runs = [run for path in args.summarize for run in json.loads(Path(path).read_text())["runs"]]
        print(table(runs))
        return 0
    from tunesmith.data.sampling import per_class_indices

    train, test = read(DATA / "train.tsv"), test_rows(read(DATA / "test.tsv"), args.test_rows)
    names = sorted({label for _, label in train})
    ids = {name: index for index, name in enumerate(names)}
    test_texts, truth = [text for text, _ in test], np.array([ids[label] for _, label in test])
    result: dict = {
        "threads": os.environ.get("OMP_NUM_THREADS"),
        "test_rows": len(test),
        "max_length": args.max_length,
        "setfit_iterations": args.setfit_iterations,
        "runs": [],
    }
    print(f"test rows: {len(test)}", flush=True)
    if not args.no_zero_shot:
        result["zero_shot"] = zero_shot(test_texts, truth, names, args.max_length)
        print(f"zero-shot: {result['zero_shot']}", flush=True)
    sides = [args.only] if args.only else ["tunesmith", "setfit"]
    for shots in (int(k) for k in args.shots.split(",")):
        for seed in range(args.seeds):
            rows = per_class_indices([label for _, label in train], shots, seed)
            texts, targets = [train[i][0] for i in rows], np.array([ids[train[i][1]] for i in rows])
            for side in sides:
                if side == "tunesmith":
                    predict, seconds = tunesmith_run(texts, targets, seed, args.max_length)
                else:
                    predict, seconds = setfit_run(texts, targets, seed, args.max_length, args.setfit_iterations)
                accuracy = float((predict(test_texts) == truth).mean())
                # CPU seconds as well as wall-clock ones: on a shared machine the wall clock measures the neighbours.
                record = {"side": side, "shots": shots, "seed": seed, "accuracy": accuracy}
                record.update(train_s=seconds[0], train_cpu_s=seconds[1])
                result["runs"].append(record)
                print(json.dumps(record), flush=True)
                Path(args.output).parent.mkdir(parents=True, exist_ok=True)
                Path(args.output).write_text(json.dumps(result, indent=2))
    print("\n" + table(result["runs"]))
    return 0


def table(runs: list[dict]) -> str:
    """Mean ± std per (shots, library) over the seeds both libraries finished, and the time ratio."""
    lines = [
        "| shots per class | library | seeds | accuracy (mean ± std) | training s (mean ± std) | setfit's time / ours "
        "(range) |",
        "|---|---|---|---|---|---|",
    ]
    for shots in sorted({r["shots"] for r in runs}):
        done = {
            side: {r["seed"]: r for r in runs if r["shots"] == shots and r["side"] == side}
            for side in ("tunesmith", "setfit")
        }
        seeds = sorted(set(done["tunesmith"]) & set(done["setfit"])) or sorted(
            set(done["tunesmith"]) | set(done["setfit"])
        )
        for side in ("tunesmith", "setfit"):
            chosen = [done[side][seed] for seed in seeds if seed in done[side]]
            if not chosen:
                continue
            key = "train_cpu_s" if all("train_cpu_s" in r for r in runs) else "train_s"
            ratios = [
                done["setfit"][s][key] / done["tunesmith"][s][key]
                for s in seeds
                if s in done["setfit"] and s in done["tunesmith"]
            ]
            ratio = (
                f"{statistics.mean(ratios):.2f}× ({min(ratios):.2f}–{max(ratios):.2f})"
                if ratios and side == "tunesmith"
                else ""
            )
            accuracy = summary([r["accuracy"] for r in chosen])
            seconds = summary([r["train_s"] for r in chosen], digits=1)
            if all("train_cpu_s" in r for r in chosen):
                seconds += f" (CPU {summary([r['train_cpu_s'] for r in chosen], digits=1)})"
            names = ", ".join(str(r["seed"]) for r in chosen)
            lines.append(f"| {shots} | {side} | {names} | {accuracy} | {seconds} | {ratio} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
