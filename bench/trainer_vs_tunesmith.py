"""tunesmith against the Hugging Face Trainer: same model, data and hyperparameters, one run.

    python bench/trainer_vs_tunesmith.py --train-rows 8000 --rounds 1

Each contestant trains in its own process (a process's peak resident set never goes down,
so peak memory must be measured per process), in alternating order across rounds so that
drift in a shared machine's speed hits all alike. Prints and saves (results.json, table.md
in --output-dir) samples/s, tokens/s, peak RSS and dev accuracy, each as a ratio to the
Trainer (to the first contestant when the Trainer is left out), then inference speed
against a transformers pipeline, and the share of the machine's measured matmul FLOP/s
that training achieves. With --seeds 42,7,13 --rounds 3
each round trains with its own seed and the dev accuracy of every seed is listed too.

With --gpu everything runs on the first CUDA GPU and both trainers use bf16 autocast (the
Trainer's bf16=True; tunesmith's default, auto, picks bf16 there); peak GPU memory is added.

Every contestant starts from the user's environment. The Trainer and the pipeline run without
the huge pages that `import tunesmith` turns on (torch's THP_MEM_ALLOC_ENABLE), as they would
without tunesmith; tunesmith and bare_loop run with them. Peak memory is the process's own
high-water mark (VmHWM), not getrusage's, which would count this launching process's size too.

Contestants:
  trainer          the Trainer with its defaults plus dynamic padding (DataCollatorWithPadding)
  trainer_grouped  the same with group_by_length sampling, its fastest setting
  tunesmith        `tunesmith.finetune` with the same hyperparameters
  tunesmith_full   the same with training.cpu_speedups false: none of tunesmith.speedups' patches
                   (the last layer computes every token, as in the Trainer; torch's dropout; a
                   dense embedding gradient), to isolate what they save together (huge pages stay)
  bare_loop        not a trainer: the recipe's arithmetic alone, for the ceiling any trainer can
                   reach here (forward, backward, clipping, fused AdamW, the schedule, over batches
                   collated before the clock starts and sorted by length across the whole set, the
                   least padding batches of 32 can have; no data loading, logging or checkpoint),
                   every token through every layer as the Trainer computes them

The FLOP/s share counts the model's FLOPs for every contestant (the full model's, every
token through every layer), so it compares speeds; tunesmith with the last layer cls-only
executes fewer, and the share of those it executed is printed under the table.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sst2"
CONTESTANTS = ("trainer", "trainer_grouped", "tunesmith")
BOUNDS = ("bare_loop",)
VARIANTS = ("tunesmith_full",)
EVERY = CONTESTANTS + VARIANTS + BOUNDS
PREDICTORS = ("pipeline", "pipeline_batched", "tunesmith_predict")
# The recipe both sides follow; everything else is each side's default.
RECIPE = {"learning_rate": 5e-5, "batch_size": 32, "epochs": 1, "weight_decay": 0.01, "warmup_ratio": 0.1,
          "max_length": 128}  # fmt: skip


# The environment each contestant starts from: the user's, as it was before this process
# imported tunesmith (which turns torch's huge pages on for the process, and its children).
LAUNCH_ENVIRONMENT = dict(os.environ)


def without_tunesmith_huge_pages() -> None:
    """torch's default for a process that does not use tunesmith: no huge pages, unless the user
    asked for them. The Trainer imports tunesmith only to find the bundled model."""
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "0")


def read_tsv(path: Path) -> tuple[list[str], list[int]]:
    """SST-2's GLUE TSV: a header, then sentence<TAB>label; no quoting."""
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    rows = [line.rsplit("\t", 1) for line in lines if line.strip()]
    return [text for text, _ in rows], [int(label) for _, label in rows]


# --- the contestants, each run in a fresh process -------------------------------------------


def train_trainer(work: Path, grouped: bool, gpu: bool, seed: int) -> dict[str, Any]:
    import numpy as np
    import torch
    from datasets import Dataset
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    without_tunesmith_huge_pages()
    from tunesmith.models.backbones import resolve

    set_seed(seed)
    model_path = resolve("minilm")
    tokenizer = AutoTokenizer.from_pretrained(model_path)

    def encoded(path: Path) -> Dataset:
        texts, labels = read_tsv(path)
        data = Dataset.from_dict({"sentence": texts, "label": labels})
        return data.map(
            lambda rows: tokenizer(rows["sentence"], truncation=True, max_length=RECIPE["max_length"]),
            batched=True,
            remove_columns=["sentence"],
        )

    train, dev = encoded(work / "train.tsv"), encoded(work / "dev.tsv")
    # fp32 weights, as tunesmith loads them: a half-precision checkpoint would otherwise train in half.
    model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=2, dtype=torch.float32)
    args = TrainingArguments(
        output_dir=str(work / ("trainer-grouped" if grouped else "trainer")),
        per_device_train_batch_size=RECIPE["batch_size"],
        num_train_epochs=RECIPE["epochs"],
        learning_rate=RECIPE["learning_rate"],
        weight_decay=RECIPE["weight_decay"],
        warmup_steps=RECIPE["warmup_ratio"],
        seed=seed,
        train_sampling_strategy="group_by_length" if grouped else "random",
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=not gpu,
        bf16=gpu,
    )
    trainer = Trainer(model=model, args=args, train_dataset=train, data_collator=DataCollatorWithPadding(tokenizer))
    began = time.perf_counter()
    trainer.train()
    train_time = time.perf_counter() - began
    predictions = trainer.predict(dev)
    accuracy = float((np.argmax(predictions.predictions, axis=-1) == predictions.label_ids).mean())
    tokens = sum(len(ids) for ids in train["input_ids"]) * RECIPE["epochs"]
    return {
        "train_time_s": train_time,
        "samples_per_s": len(train) * RECIPE["epochs"] / train_time,
        "tokens_per_s": tokens / train_time,
        "dev_accuracy": accuracy,
    }


def train_tunesmith(work: Path, seed: int, speedups: bool) -> dict[str, Any]:
    import tunesmith

    run = tunesmith.finetune(
        {
            "name": "tunesmith",
            "model": "minilm",
            "output_dir": str(work / ("tunesmith" if speedups else "tunesmith-full")),
            # No test split carved from train: both sides train on every row of train.tsv.
            "data": {"train": str(work / "train.tsv"), "validation": str(work / "dev.tsv"),
                     "text_column": "sentence", "test_split": 0},
            "training": {
                "epochs": RECIPE["epochs"], "batch_size": RECIPE["batch_size"],
                "learning_rate": RECIPE["learning_rate"], "weight_decay": RECIPE["weight_decay"],
                "warmup_ratio": RECIPE["warmup_ratio"], "max_length": RECIPE["max_length"],
                "seed": seed, "save_steps": None, "logging_steps": 500, "cpu_speedups": speedups,
            },
        },
        overwrite=True,
    )  # fmt: skip
    training = run.metrics["training"]
    return {
        "train_time_s": training["train_time_s"] - training["eval_time_s"],
        "samples_per_s": training["samples_per_s"],
        "tokens_per_s": training["tokens_per_s"],
        "dev_accuracy": run.metrics["validation"]["accuracy"],
    }


def train_bare_loop(work: Path, gpu: bool, seed: int) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_scheduler, set_seed

    from tunesmith.models.backbones import resolve

    set_seed(seed)
    device = "cuda" if gpu else "cpu"
    model_path = resolve("minilm")
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=2, dtype=torch.float32)
    model.to(device).train()

    def batches(path: Path, shuffle: bool) -> list[dict[str, torch.Tensor]]:
        texts, labels = read_tsv(path)
        ids = tokenizer(texts, truncation=True, max_length=RECIPE["max_length"])["input_ids"]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        size = RECIPE["batch_size"]
        chunks = [order[start : start + size] for start in range(0, len(order), size)]
        if shuffle:
            random.Random(seed).shuffle(chunks)
        collated = []
        for chunk in chunks:
            batch = tokenizer.pad({"input_ids": [ids[i] for i in chunk]}, return_tensors="pt")
            batch["labels"] = torch.tensor([labels[i] for i in chunk])
            collated.append({key: value.to(device) for key, value in batch.items()})
        return collated

    train = batches(work / "train.tsv", shuffle=True)
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": RECIPE["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=RECIPE["learning_rate"], fused=True)
    steps = len(train) * RECIPE["epochs"]
    scheduler = get_scheduler("linear", optimizer, round(RECIPE["warmup_ratio"] * steps), steps)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=gpu)
    if gpu:
        torch.cuda.synchronize()
    began = time.perf_counter()
    for _ in range(RECIPE["epochs"]):
        for batch in train:
            with autocast:
                loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
    if gpu:
        torch.cuda.synchronize()
    train_time = time.perf_counter() - began
    model.eval()
    correct = total = 0
    with torch.inference_mode(), autocast:
        for batch in batches(work / "dev.tsv", shuffle=False):
            labels = batch.pop("labels")
            correct += int((model(**batch).logits.argmax(-1) == labels).sum())
            total += len(labels)
    samples = sum(len(batch["labels"]) for batch in train) * RECIPE["epochs"]
    tokens = sum(int(batch["attention_mask"].sum()) for batch in train) * RECIPE["epochs"]
    return {
        "train_time_s": train_time,
        "samples_per_s": samples / train_time,
        "tokens_per_s": tokens / train_time,
        "dev_accuracy": correct / total,
    }


def predict(work: Path, how: str, gpu: bool) -> dict[str, Any]:
    """Sentences per second on the dev and test texts with the model tunesmith trained."""
    texts = read_tsv(work / "dev.tsv")[0] + read_tsv(work / "predict.tsv")[0]
    run_dir = work / "tunesmith"
    if how == "tunesmith_predict":
        import tunesmith

        predictor = tunesmith.load(run_dir)
        call = lambda: predictor.predict(texts)  # noqa: E731
    else:
        import torch
        from transformers import pipeline

        torch.manual_seed(0)
        classify = pipeline("text-classification", model=str(run_dir / "model"), device=0 if gpu else "cpu")
        batch_size = 32 if how == "pipeline_batched" else 1
        call = lambda: classify(texts, batch_size=batch_size, truncation=True)  # noqa: E731
    began = time.perf_counter()
    call()
    elapsed = time.perf_counter() - began
    return {"predict_time_s": elapsed, "texts_per_s": len(texts) / elapsed}


def worker(name: str, work: Path, gpu: bool, seed: int) -> None:
    if name == "trainer":
        result = train_trainer(work, grouped=False, gpu=gpu, seed=seed)
    elif name == "trainer_grouped":
        result = train_trainer(work, grouped=True, gpu=gpu, seed=seed)
    elif name in ("tunesmith", "tunesmith_full"):
        result = train_tunesmith(work, seed, speedups=name == "tunesmith")
    elif name == "bare_loop":
        result = train_bare_loop(work, gpu, seed)
    else:
        result = predict(work, name, gpu)
    from tunesmith.train.measure import peak_resident_mb  # after the run: its import changes nothing now

    result["peak_rss_mb"] = peak_resident_mb()
    if gpu:
        import torch

        result["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    (work / f"{name}.json").write_text(json.dumps(result))


# --- the machine's limit ---------------------------------------------------------------------


def matmul_flops(gpu: bool) -> float:
    """Measured matmul FLOP/s, the ceiling training can reach: fp32 with torch's default threads
    on the CPU, bf16 on the GPU (the precision the trainers compute in there)."""
    import torch

    size, device = (8192, "cuda") if gpu else (2048, "cpu")
    dtype = torch.bfloat16 if gpu else torch.float32
    a, b = torch.randn(size, size, device=device, dtype=dtype), torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(10):
        if gpu:
            torch.cuda.synchronize()
        began = time.perf_counter()
        a @ b
        if gpu:
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - began)
    return 2 * size**3 / best


def training_flops(work: Path) -> tuple[float, float]:
    """Useful training FLOPs of one pass over train.tsv, padding excluded: the full model's,
    and those executed with the last layer cls-only.

    Per real token: 6 x the weights of the encoder's matrix multiplies (2 forward, 4 backward);
    per sequence and layer: 12 x length^2 x width for attention's two matmuls (scores and mix).
    Embedding lookups are not matmuls and count nothing. Cls-only, the last layer computes
    all but the first token's keys and values only: their query, attention output and two
    feed-forward matmuls, and their rows of attention, are skipped.
    """
    from torch import nn
    from transformers import AutoModel, AutoTokenizer

    from tunesmith.models.backbones import resolve

    path = resolve("minilm")
    model = AutoModel.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))
    texts = read_tsv(work / "train.tsv")[0]
    lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=RECIPE["max_length"])["input_ids"]]
    layers, width = model.config.num_hidden_layers, model.config.hidden_size
    per_pass = sum(6 * linear * n + 12 * layers * n * n * width for n in lengths)
    last = model.encoder.layer[-1]
    skipped_weights = sum(
        m.weight.numel() for m in (last.attention.self.query, last.attention.output.dense,
                                   last.intermediate.dense, last.output.dense)
    )  # fmt: skip
    skipped = sum(6 * skipped_weights * (n - 1) + 12 * (n * n - n) * width for n in lengths)
    return per_pass * RECIPE["epochs"], (per_pass - skipped) * RECIPE["epochs"]


# --- orchestration ---------------------------------------------------------------------------


def prepare(data: Path, work: Path, rows: int, seed: int) -> None:
    """A seeded sample of the train file (the same for every contestant), dev and test as they are."""
    lines = (data / "train.tsv").read_text(encoding="utf-8").splitlines()
    header, body = lines[0], lines[1:]
    sample = random.Random(seed).sample(body, min(rows, len(body))) if rows else body
    work.mkdir(parents=True, exist_ok=True)
    (work / "train.tsv").write_text("\n".join([header, *sample]) + "\n", encoding="utf-8")
    (work / "dev.tsv").write_text((data / "dev.tsv").read_text(encoding="utf-8"), encoding="utf-8")
    (work / "predict.tsv").write_text((data / "test.tsv").read_text(encoding="utf-8"), encoding="utf-8")


def launch(name: str, work: Path, gpu: bool, seed: int) -> dict[str, Any]:
    gpu_flag = ["--gpu"] if gpu else []
    command = [sys.executable, __file__, "--worker", name, "--output-dir", str(work), "--seeds", str(seed), *gpu_flag]
    done = subprocess.run(command, env=LAUNCH_ENVIRONMENT)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed with exit code {done.returncode}")
    return json.loads((work / f"{name}.json").read_text())


def median_of(runs: list[dict[str, Any]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0] if key != "seed"}


def accuracy_spread(runs: dict[str, list[dict[str, Any]]]) -> str:
    """Dev accuracy per seed: with one seed, a difference of a point is within one run's noise."""
    lines = ["", "| contestant | dev accuracy by seed | mean |", "|---|---|---|"]
    for name, rounds in runs.items():
        by_seed = {run["seed"]: run["dev_accuracy"] for run in rounds}
        listed = ", ".join(f"{seed}: {accuracy:.4f}" for seed, accuracy in by_seed.items())
        lines.append(f"| {name} | {listed} | {statistics.mean(by_seed.values()):.4f} |")
    return "\n".join(lines)


def table(results: dict[str, dict[str, float]], predictions: dict[str, dict[str, float]], limit: float) -> str:
    base_name = "trainer" if "trainer" in results else next(iter(results))
    base = results[base_name]
    gpu = "peak_gpu_mb" in base
    memory = " peak GPU (MB) |" if gpu else ""
    lines = [
        f"| contestant | samples/s | × {base_name} | tokens/s | peak RSS (MB) |{memory} dev accuracy | FLOP/s share |",
        "|---|---|---|---|---|---|---|" + ("---|" if gpu else ""),
    ]
    for name, result in results.items():
        gpu_memory = f" {result['peak_gpu_mb']:.0f} |" if gpu else ""
        lines.append(
            f"| {name} | {result['samples_per_s']:.1f} | {result['samples_per_s'] / base['samples_per_s']:.2f} | "
            f"{result['tokens_per_s']:.0f} | {result['peak_rss_mb']:.0f} |{gpu_memory} {result['dev_accuracy']:.4f} | "
            f"{result['achieved_flops'] / limit:.1%} |"
        )
    if predictions:
        lines += ["", "| predictor | texts/s | × pipeline | peak RSS (MB) |", "|---|---|---|---|"]
        for name, result in predictions.items():
            ratio = result["texts_per_s"] / predictions["pipeline"]["texts_per_s"]
            lines.append(f"| {name} | {result['texts_per_s']:.1f} | {ratio:.2f} | {result['peak_rss_mb']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with SST-2's train/dev/test.tsv")
    parser.add_argument("--train-rows", type=int, default=8000, help="training sample size; 0: the whole file")
    parser.add_argument("--rounds", type=int, default=1, help="repetitions, in alternating order; medians reported")
    parser.add_argument(
        "--contestants", default=",".join(CONTESTANTS), help=f"comma-separated, from {', '.join(EVERY)}"
    )
    parser.add_argument("--skip-predict", action="store_true", help="leave out the inference comparison")
    parser.add_argument("--output-dir", type=Path, default=Path("bench/out"))
    parser.add_argument("--gpu", action="store_true", help="train and predict on the first CUDA GPU, in bf16")
    parser.add_argument("--seeds", default="42", help="training seeds, comma-separated; round i uses the i-th, cycling")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.output_dir, args.gpu, int(args.seeds))
        return
    if not (args.data / "train.tsv").is_file():
        raise SystemExit(f"No SST-2 at {args.data}: pass --data FOLDER holding train.tsv, dev.tsv and test.tsv.")
    contestants = args.contestants.split(",")
    unknown = sorted(set(contestants) - set(EVERY))
    if unknown:
        parser.error(f"unknown contestant(s) {', '.join(unknown)}: choose from {', '.join(EVERY)}")
    seeds = [int(seed) for seed in args.seeds.split(",")]
    prepare(args.data, args.output_dir, args.train_rows, seed=0)
    limit = matmul_flops(args.gpu)
    flops, cls_only_flops = training_flops(args.output_dir)
    precision = "bf16 GPU" if args.gpu else "fp32"
    print(
        f"machine: {limit / 1e9:.1f} GFLOP/s {precision} matmul; training pass: {flops / 1e12:.2f} TFLOP "
        f"({cls_only_flops / 1e12:.2f} with the last layer cls-only)",
        flush=True,
    )
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in contestants}
    for round_index in range(args.rounds):
        order = contestants if round_index % 2 == 0 else contestants[::-1]
        seed = seeds[round_index % len(seeds)]
        for name in order:
            result = launch(name, args.output_dir, args.gpu, seed) | {"seed": seed}
            print(f"round {round_index + 1} {name}: {json.dumps(result)}", flush=True)
            runs[name].append(result)
    results = {name: median_of(runs[name]) for name in contestants}
    for result in results.values():
        result["achieved_flops"] = flops / result["train_time_s"]
    predictions = {}
    if not args.skip_predict and "tunesmith" in contestants:
        # The predictors load the model the last tunesmith round left behind.
        predictions = {name: launch(name, args.output_dir, args.gpu, seeds[0]) for name in PREDICTORS}
    summary = table(results, predictions, limit)
    if "tunesmith" in results:
        executed = cls_only_flops / results["tunesmith"]["train_time_s"] / limit
        summary += (
            f"\n\ntunesmith executes {cls_only_flops / flops:.1%} of these FLOPs (the last layer cls-only): "
            f"{executed:.1%} of the machine's matmul FLOP/s."
        )
    if len(seeds) > 1:
        summary += "\n" + accuracy_spread(runs)
    print(summary)
    (args.output_dir / "table.md").write_text(summary + "\n")
    record = {"args": {k: str(v) for k, v in vars(args).items()}, "recipe": RECIPE, "matmul_flops": limit,
              "training_flops": flops,
              "cls_only_training_flops": cls_only_flops, "runs": runs, "predictions": predictions}  # fmt: skip
    (args.output_dir / "results.json").write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
