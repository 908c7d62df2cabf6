"""The pretraining curve: training loss and held-out loss (perplexity on the right) against steps."""

from __future__ import annotations

import json
import math
from pathlib import Path

FILE = "pretraining_curve.png"


def plot(history: Path, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no screen needed
    from matplotlib import pyplot as plt

    records = [json.loads(line) for line in history.read_text(encoding="utf-8").splitlines() if line.strip()]
    training = [(r["step"], r["loss"]) for r in records if "split" not in r and "loss" in r]
    held_out = [(r["step"], r["loss"]) for r in records if r.get("split") == "validation" and not r.get("final")]
    figure, axis = plt.subplots(figsize=(7, 4.2), dpi=120)
    if training:
        axis.plot(*zip(*training, strict=True), label="training loss", color="tab:blue", alpha=0.7)
    if held_out:
        axis.plot(*zip(*held_out, strict=True), "o-", label="held-out loss", color="tab:orange")
        right = axis.twinx()
        right.set_ylim(*(math.exp(min(limit, 700)) for limit in axis.get_ylim()))
        right.set_yscale("log")
        right.set_ylabel("held-out perplexity (log scale)")
    axis.set_xlabel("optimizer step")
    axis.set_ylabel("loss (nats per predicted token)")
    axis.set_title("Pretraining")
    axis.grid(alpha=0.3)
    axis.legend(loc="upper right")
    figure.tight_layout()
    figure.savefig(out)
    plt.close(figure)
