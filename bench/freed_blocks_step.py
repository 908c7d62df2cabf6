"""What keeping freed blocks (training.keep_freed_blocks) saves per training step on the CPU.

    python bench/freed_blocks_step.py

malloc's settings hold for a whole process, so the two sides cannot alternate inside one: each
round starts one process with glibc's defaults and one with `keep_freed_blocks()`, in turn. Each
process trains the bundled MiniLM classifier as tunesmith does by default (cls-only last layer,
fused AdamW, clipping at 1.0) on random batches of 32, and reports its median step time over
blocks of 8 steps and its peak RSS. Prints every process, then the medians and their ratio.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch
from transformers import AutoModelForSequenceClassification

from tunesmith.models.backbones import resolve
from tunesmith.models.cls_only import cls_only_last_layer
from tunesmith.train.host_memory import keep_freed_blocks


def training_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: dict[str, torch.Tensor]) -> None:
    model(**batch).loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def one_process(keep: bool, length: int, blocks: int) -> dict:
    if keep and not keep_freed_blocks():
        raise SystemExit("keep_freed_blocks() did not take effect here (glibc only; MALLOC_* unset)")
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(resolve("minilm"), num_labels=2, dtype=torch.float32)
    cls_only_last_layer(model)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5, fused=True)
    times = []
    for _ in range(blocks):
        batches = [
            {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": torch.randint(0, 2, (32,))}
            for ids in torch.randint(1000, 20000, (9, 32, length))
        ]
        training_step(model, optimizer, batches[0])  # untimed: a new batch shape's first step
        began = time.perf_counter()
        for batch in batches[1:]:
            training_step(model, optimizer, batch)
        times.append((time.perf_counter() - began) / 8)
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes
    return {"step_ms": statistics.median(times) * 1000, "peak_rss_mb": peak_rss_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="processes per side, alternating")
    parser.add_argument("--length", type=int, default=14, help="tokens per sequence")
    parser.add_argument("--blocks", type=int, default=6, help="timed blocks of 8 steps per process")
    parser.add_argument("--child", choices=["default", "keep"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one_process(args.child == "keep", args.length, args.blocks)))
        return
    results: dict[str, list[dict]] = {"default": [], "keep": []}
    for round_number in range(1, args.rounds + 1):
        for side in results:
            command = [sys.executable, __file__, "--child", side, "--length", str(args.length)]
            done = subprocess.run([*command, "--blocks", str(args.blocks)], capture_output=True, text=True, check=True)
            result = json.loads(done.stdout.splitlines()[-1])
            results[side].append(result)
            step_ms, peak = result["step_ms"], result["peak_rss_mb"]
            print(f"round {round_number} {side}: {step_ms:.0f} ms/step, peak RSS {peak:.0f} MB", flush=True)
    default, keep = (statistics.median(r["step_ms"] for r in results[side]) for side in ("default", "keep"))
    print(f"length {args.length}: default {default:.0f} ms/step, kept blocks {keep:.0f} ms/step, {default / keep:.2f}x")


if __name__ == "__main__":
    main()
