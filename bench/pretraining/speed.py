"""Masked-LM pretraining speed: `tunesmith pretrain` against the Hugging Face Trainer with
DataCollatorForLanguageModeling, on the same model shape, data, blocks and recipe, in one run.

    python bench/pretraining/speed.py --corpus /tmp/corpora/english.txt --tokenizer /tmp/corpora/tok-en

Both sides train a 4-layer, 256-wide BERT from the same seed on the same packed blocks of 128 tokens
(tunesmith's blocks.packed_blocks, so both see identical examples), batch 32, AdamW 5e-4, 6% warm-up,
weight decay 0.01, 15% masking with the 80/10/10 rule, for `--steps` steps, no evaluation. Each run is its
own process (`--rounds` alternating rounds); each reports tokens/s over the steps after the first 5, peak
resident memory, and its training loss every 10 steps. The Trainer projects every position onto the
vocabulary and takes the loss over the masked ones; tunesmith projects only the masked positions.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

RECIPE = {"steps": 200, "batch": 32, "length": 128, "lr": 5e-4, "warmup": 0.06, "decay": 0.01, "seed": 42}
SHAPE = {"hidden_size": 256, "num_layers": 4, "num_heads": 4, "intermediate_size": 1024}


def blocks(corpus: Path, tokenizer_dir: Path, documents: int):
    from transformers import AutoTokenizer

    from tunesmith.pretrain.blocks import packed_blocks

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    texts = corpus.read_text(encoding="utf-8").splitlines()[:documents]
    return tokenizer, packed_blocks(texts, tokenizer, RECIPE["length"], causal=False)


def run_trainer(args: argparse.Namespace) -> dict:
    import torch
    from transformers import (
        BertConfig, BertForMaskedLM, DataCollatorForLanguageModeling, Trainer, TrainerCallback, TrainingArguments,
    )  # fmt: skip

    tokenizer, data = blocks(args.corpus, args.tokenizer, args.documents)
    torch.manual_seed(RECIPE["seed"])
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=SHAPE["hidden_size"], num_hidden_layers=SHAPE["num_layers"],
        num_attention_heads=SHAPE["num_heads"], intermediate_size=SHAPE["intermediate_size"], pad_token_id=0,
    )  # fmt: skip
    model = BertForMaskedLM(config)
    losses: list[float] = []
    times: list[float] = []

    class Timer(TrainerCallback):
        def on_step_end(self, *_, **__):
            times.append(time.perf_counter())

        def on_log(self, _args, _state, _control, logs=None, **__):
            if logs and "loss" in logs:
                losses.append(float(logs["loss"]))

    training = TrainingArguments(
        output_dir=str(args.scratch / "trainer"), max_steps=RECIPE["steps"], per_device_train_batch_size=RECIPE["batch"],
        learning_rate=RECIPE["lr"], warmup_steps=round(RECIPE["warmup"] * RECIPE["steps"]),
        weight_decay=RECIPE["decay"], logging_steps=10, save_strategy="no", report_to=[], seed=RECIPE["seed"],
        dataloader_num_workers=0, disable_tqdm=True, use_cpu=True,
    )  # fmt: skip
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)
    trainer = Trainer(model=model, args=training, train_dataset=data.select_columns(["input_ids",
                      "special_tokens_mask"]), data_collator=collator, callbacks=[Timer()])  # fmt: skip
    trainer.train()
    return measured(times, losses)


def run_tunesmith(args: argparse.Namespace) -> dict:
    from tunesmith.recipes.pretrain import pretrain

    out = args.scratch / "tunesmith"
    cfg = {
        "tokenizer": str(args.tokenizer),
        "output_dir": str(out),
        "architecture": SHAPE,
        "data": {"train": [str(args.corpus)], "max_documents": None, "validation_split": 0.01},
        "training": {
            "max_steps": RECIPE["steps"], "batch_size": RECIPE["batch"], "max_length": RECIPE["length"],
            "learning_rate": RECIPE["lr"], "warmup_ratio": RECIPE["warmup"], "weight_decay": RECIPE["decay"],
            "seed": RECIPE["seed"], "logging_steps": 10, "eval_each_epoch": False, "eval_steps": None,
            "save_steps": None,
        },
    }  # fmt: skip
    # The same documents as the Trainer's: the first `documents` lines, in a file of their own.
    corpus = args.scratch / "corpus.txt"
    corpus.write_text("\n".join(args.corpus.read_text(encoding="utf-8").splitlines()[: args.documents]) + "\n")
    cfg["data"]["train"] = [str(corpus)]
    started = time.perf_counter()
    run = pretrain(cfg, overwrite=True)
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in history if "split" not in r]
    training = run.metrics["training"]
    return {
        "tokens_per_s": training["tokens_per_s"],
        "losses": losses,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "wall_s": time.perf_counter() - started,
    }


def measured(times: list[float], losses: list[float]) -> dict:
    steady = times[5:]
    seconds = steady[-1] - steady[0]
    tokens = (len(steady) - 1) * RECIPE["batch"] * RECIPE["length"]
    return {
        "tokens_per_s": tokens / seconds,
        "losses": losses,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--tokenizer", type=Path, required=True)
    parser.add_argument("--documents", type=int, default=20000, help="the first N lines of the corpus")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=RECIPE["steps"])
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/tunesmith-pretrain-bench"))
    parser.add_argument("--only", choices=["trainer", "tunesmith"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    RECIPE["steps"] = args.steps
    args.scratch.mkdir(parents=True, exist_ok=True)
    if args.only:
        result = run_trainer(args) if args.only == "trainer" else run_tunesmith(args)
        print("RESULT " + json.dumps(result))
        return
    results: dict[str, list[dict]] = {"trainer": [], "tunesmith": []}
    for round_ in range(args.rounds):
        for side in ("trainer", "tunesmith") if round_ % 2 == 0 else ("tunesmith", "trainer"):
            command = [sys.executable, __file__, "--corpus", str(args.corpus), "--tokenizer", str(args.tokenizer),
                       "--documents", str(args.documents), "--scratch", str(args.scratch), "--only", side,
                       "--steps", str(args.steps)]  # fmt: skip
            output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            result = json.loads(output.split("RESULT ", 1)[1])
            results[side].append(result)
            print(f"round {round_ + 1} {side}: {result['tokens_per_s']:.0f} tokens/s, peak RSS "
                  f"{result['peak_rss_mb']:.0f} MB, loss at the end {mean_tail(result['losses']):.3f}", flush=True)  # fmt: skip
    summary(results)


def mean_tail(losses: list[float], records: int = 5) -> float:
    return sum(losses[-records:]) / len(losses[-records:])


def summary(results: dict[str, list[dict]]) -> None:
    speed = {side: sum(r["tokens_per_s"] for r in rs) / len(rs) for side, rs in results.items()}
    memory = {side: max(r["peak_rss_mb"] for r in rs) for side, rs in results.items()}
    print(f"\ntokens/s: tunesmith {speed['tunesmith']:.0f}, Trainer {speed['trainer']:.0f}: "
          f"{speed['tunesmith'] / speed['trainer']:.2f}x")  # fmt: skip
    print(f"peak RSS: tunesmith {memory['tunesmith']:.0f} MB, Trainer {memory['trainer']:.0f} MB")
    for side, rs in results.items():
        curves = [[round(x, 3) for x in r["losses"]] for r in rs]
        print(f"{side} training loss every 10 steps: {curves}")


if __name__ == "__main__":
    main()
