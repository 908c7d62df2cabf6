"""What the first-token last layer saves per training step, with the noise of whole runs removed.

    python bench/cls_only_step.py

Two copies of the bundled MiniLM classifier, one with `first_token_last_layer`
(tunesmith.speedups.first_token_layer, applied alone and unchecked), take training
steps (forward, backward, clipping, fused AdamW) on the same random batches of 32, in
alternating blocks of 8 steps within one process, so that the machine's drift hits both
alike. Prints the median step time of each and their ratio, per sequence length.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from transformers import AutoModelForSequenceClassification

from tunesmith.models.backbones import resolve
from tunesmith.speedups.first_token_layer import first_token_last_layer


def training_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: dict[str, torch.Tensor]) -> None:
    model(**batch).loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", default="14,30", help="tokens per sequence, comma-separated")
    parser.add_argument("--blocks", type=int, default=6, help="timed blocks of 8 steps per model and length")
    args = parser.parse_args()
    torch.manual_seed(0)
    path = resolve("minilm")
    full = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2, dtype=torch.float32)
    fast = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2, dtype=torch.float32)
    fast.load_state_dict(full.state_dict())
    first_token_last_layer(fast)
    models = {"full": full, "cls_only": fast}
    optimizers = {name: torch.optim.AdamW(m.parameters(), lr=5e-5, fused=True) for name, m in models.items()}
    for length in (int(n) for n in args.lengths.split(",")):
        times: dict[str, list[float]] = {name: [] for name in models}
        for _ in range(args.blocks):
            for name, model in models.items():
                batches = [
                    {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": torch.randint(0, 2, (32,))}
                    for ids in torch.randint(1000, 20000, (9, 32, length))
                ]
                training_step(model.train(), optimizers[name], batches[0])  # untimed: warm the allocator
                began = time.perf_counter()
                for batch in batches[1:]:
                    training_step(model, optimizers[name], batch)
                times[name].append((time.perf_counter() - began) / 8)
        full_s, fast_s = statistics.median(times["full"]), statistics.median(times["cls_only"])
        print(
            f"length {length}: full {full_s * 1000:.0f} ms/step, cls-only {fast_s * 1000:.0f} ms/step, "
            f"{full_s / fast_s:.2f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
