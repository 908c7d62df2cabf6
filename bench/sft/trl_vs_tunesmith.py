"""Supervised fine-tuning under TRL's SFTTrainer and under tunesmith, same model, data and settings, one run.

    pip install -e ".[bench]"          # TRL, for this comparison only
    python bench/sft/make_instructions.py /tmp/sft/data
    python bench/sft/make_decoder.py /tmp/sft/decoder
    python bench/sft/trl_vs_tunesmith.py --model /tmp/sft/decoder --data /tmp/sft/data [--rows 8000] [--repeats 2]

Both train the random-initialised GPT-2 for one epoch on the same prompt/completion rows, packed best-fit
into rows of 256 tokens (TRL: packing_strategy "bfd", padding-free with position ids; tunesmith: its default
packing), loss on the completion and EOS only, the same batch (16 packed rows), AdamW, linear schedule,
warm-up, clipping and seed. Each run is its own process, the tools taking turns, so that peak memory is
the process's own (its peak resident set). Tokens/s counts the examples' tokens (prompt, completion, EOS)
over the training time each tool reports; the final validation loss is computed for both trained models by
the same code (mean next-token loss over the completions' tokens of validation.jsonl).
Prints one JSON line per run and the ratios; figures go to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SETTINGS = {"max_length": 256, "batch_size": 16, "learning_rate": 2e-3, "warmup_ratio": 0.05, "weight_decay": 0.01,
            "max_grad_norm": 1.0, "seed": 0, "epochs": 1}  # fmt: skip


def rows(path: Path, limit: int | None) -> list[dict]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines[:limit]]


def run_trl(model: str, train: list[dict], output: Path, strategy: str = "bfd") -> float:
    import datasets
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    s = SETTINGS
    tokenizer = AutoTokenizer.from_pretrained(model)
    config = SFTConfig(
        output_dir=str(output), max_length=s["max_length"], packing=True, packing_strategy=strategy,
        completion_only_loss=True, per_device_train_batch_size=s["batch_size"], learning_rate=s["learning_rate"],
        warmup_steps=s["warmup_ratio"], weight_decay=s["weight_decay"], max_grad_norm=s["max_grad_norm"],
        num_train_epochs=s["epochs"], lr_scheduler_type="linear", seed=s["seed"], logging_steps=50,
        save_strategy="no", eval_strategy="no", report_to=[], use_cpu=True, dataloader_num_workers=0,
        disable_tqdm=True,
    )  # fmt: skip
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(model),
        args=config,
        train_dataset=datasets.Dataset.from_list(train),
        processing_class=tokenizer,
    )
    began = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - began
    trainer.model.save_pretrained(output / "final", safe_serialization=True)
    tokenizer.save_pretrained(output / "final")
    return seconds


def run_tunesmith(model: str, train_file: Path, output: Path) -> float:
    import tunesmith

    s = SETTINGS
    run = tunesmith.finetune({
        "model": model, "task": "causal", "output_dir": str(output),
        "data": {"train": str(train_file), "validation_split": 0.0, "test_split": 0.0},
        "causal": {"packing": True, "evaluation_generations": 0},
        "training": {"max_length": s["max_length"], "batch_size": s["batch_size"], "learning_rate": s["learning_rate"],
                     "warmup_ratio": s["warmup_ratio"], "weight_decay": s["weight_decay"],
                     "max_grad_norm": s["max_grad_norm"], "seed": s["seed"], "epochs": s["epochs"],
                     "eval_each_epoch": False, "logging_steps": 50, "save_steps": 100000},
    })  # fmt: skip
    training = run.metrics["training"]
    return training["train_time_s"] - training["eval_time_s"]


def validation_loss(model_dir: str, validation: list[dict]) -> float:
    """Mean next-token loss over the completion tokens (and EOS), the same code for both tools' models."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunesmith.causal.encoding import encode
    from tunesmith.causal.packing import collator

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    collate = collator(tokenizer.eos_token_id)
    total = count = 0.0
    for start in range(0, len(validation), 64):
        encoded = [encode(tokenizer, row, SETTINGS["max_length"]) for row in validation[start : start + 64]]
        batch = collate([{"input_ids": e.input_ids, "labels": e.labels} for e in encoded])
        targets = batch.pop("labels")
        with torch.no_grad():
            logits = model(**batch).logits
        losses = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, ignore_index=-100, reduction="sum")
        total += float(losses)
        count += float((targets != -100).sum())
    return total / count


def example_tokens(model: str, train: list[dict]) -> int:
    from transformers import AutoTokenizer

    from tunesmith.causal.encoding import encode

    tokenizer = AutoTokenizer.from_pretrained(model)
    return sum(len(encode(tokenizer, row, SETTINGS["max_length"]).input_ids) for row in train)


def child(args: argparse.Namespace) -> None:
    """One tool's run, in this process: prints its JSON line."""
    train = rows(args.data / "train.jsonl", args.rows)
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder)
        if args.tool.startswith("trl"):
            seconds = run_trl(args.model, train, output, args.tool.split("-")[1])
            final = output / "final"
        else:
            train_file = output / "train.jsonl"
            train_file.write_text("".join(json.dumps(row) + "\n" for row in train), encoding="utf-8")
            seconds = run_tunesmith(args.model, train_file, output / "run")
            final = output / "run" / "model"
        loss = validation_loss(str(final), rows(args.data / "validation.jsonl", None))
    tokens = example_tokens(args.model, train) * SETTINGS["epochs"]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"tool": args.tool, "train_s": round(seconds, 2), "tokens_per_s": round(tokens / seconds, 1),
                      "peak_rss_mb": round(peak_mb, 1), "validation_loss": round(loss, 4)}))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=8000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--trl-wrapped", action="store_true",
        help='also TRL\'s packing_strategy "wrapped" (rows cut mid-example, attention across examples: for reference)',
    )  # fmt: skip
    parser.add_argument("--tool", choices=["trl-bfd", "trl-wrapped", "tunesmith"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tool:
        child(args)
        return
    tools = ["trl-bfd", *(["trl-wrapped"] if args.trl_wrapped else []), "tunesmith"]
    results: dict[str, list[dict]] = {tool: [] for tool in tools}
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    for _ in range(args.repeats):
        for tool in tools:
            command = [sys.executable, __file__, "--model", args.model, "--data", str(args.data),
                       "--rows", str(args.rows), "--tool", tool]  # fmt: skip
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
            line = json.loads(done.stdout.strip().splitlines()[-1])
            print(json.dumps(line), flush=True)
            results[tool].append(line)
    best = {tool: max(runs, key=lambda r: r["tokens_per_s"]) for tool, runs in results.items()}
    print(json.dumps({
        "threads": os.environ.get("OMP_NUM_THREADS", "default"),
        "speed_ratio_best": {tool: round(best["tunesmith"]["tokens_per_s"] / best[tool]["tokens_per_s"], 3)
                             for tool in tools if tool != "tunesmith"},
        "memory_ratio": {tool: round(best["tunesmith"]["peak_rss_mb"] / best[tool]["peak_rss_mb"], 3)
                         for tool in tools if tool != "tunesmith"},
        "validation_loss": {tool: [r["validation_loss"] for r in runs] for tool, runs in results.items()},
    }))  # fmt: skip


if __name__ == "__main__":
    main()
