"""The report's PNG figures, drawn with matplotlib (Agg: no display needed) from the run folder's files."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

# Written by `draw`; the run folder lists them among its own files (runs.RUN_FILES).
FIGURES = (
    "confusion_matrix.png",
    "per_class_f1.png",
    "learning_curves.png",
    "reliability.png",
    "predicted_vs_gold.png",
)
_DPI = 110


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def confusion_matrix(split_metrics: dict[str, Any], names: list[str], path: Path, split: str) -> None:
    """Counts, with each row's share of its true class as the colour, so that small classes show."""
    import numpy as np

    plt = _pyplot()
    counts = np.asarray(split_metrics["confusion_matrix"], dtype=float)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.55 * len(names) + 2)
    figure, axes = plt.subplots(figsize=(size + 1, size))
    image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    axes.set_xticks(
        range(len(names)), names, rotation=45 if len(names) > 4 else 0, ha="right" if len(names) > 4 else "center"
    )
    axes.set_yticks(range(len(names)), names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(f"Confusion matrix ({split})")
    if len(names) <= 20:
        for row in range(len(names)):
            for column in range(len(names)):
                dark = shares[row, column] > 0.5
                axes.text(
                    column,
                    row,
                    f"{int(counts[row, column])}",
                    ha="center",
                    va="center",
                    color="white" if dark else "black",
                    fontsize=9,
                )
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="share of the true class")
    figure.tight_layout()
    figure.savefig(path, dpi=_DPI)
    plt.close(figure)


def per_class_f1(split_metrics: dict[str, Any], path: Path, split: str, noun: str) -> None:
    plt = _pyplot()
    rows = [(name, row["f1-score"], int(row["support"])) for name, row in split_metrics["per_class"].items()]
    figure, axes = plt.subplots(figsize=(7, max(2.5, 0.35 * len(rows) + 1.2)))
    labels = [f"{name} ({support:,})" for name, _, support in rows]
    bars = axes.barh(range(len(rows)), [f1 for _, f1, _ in rows], color="tab:blue")
    axes.set_yticks(range(len(rows)), labels)
    axes.invert_yaxis()
    axes.set_xlim(0, 1.08)
    axes.set_xlabel("F1")
    axes.set_title(f"F1 per {noun} ({split}; support in brackets)")
    for bar, (_, f1, _) in zip(bars, rows, strict=True):
        axes.text(bar.get_width() + 0.01, bar.get_y() + bar.get_height() / 2, f"{f1:.3f}", va="center", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=_DPI)
    plt.close(figure)


def learning_curves(history: list[dict[str, Any]], metric: str, path: Path) -> bool:
    """Training loss, learning rate and the validation metric against the step; False with nothing to draw."""
    steps = [r for r in history if "split" not in r and "loss" in r]
    evaluations = [r for r in history if r.get("split") == "validation" and not r.get("final") and metric in r]
    if not steps:
        return False
    plt = _pyplot()
    panels = 3 if evaluations else 2
    figure, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.4))
    # Few points (a short run logs only a few) need markers, or a single one draws nothing.
    marker = "o" if len(steps) < 30 else None
    axes[0].plot([r["step"] for r in steps], [r["loss"] for r in steps], color="tab:blue", marker=marker)
    axes[0].set_title("training loss")
    axes[1].plot([r["step"] for r in steps], [r["learning_rate"] for r in steps], color="tab:orange", marker=marker)
    axes[1].set_title("learning rate")
    axes[1].ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    if evaluations:
        axes[2].plot([r["step"] for r in evaluations], [r[metric] for r in evaluations], marker="o", color="tab:green")
        axes[2].set_title(f"validation {metric}")
    for panel in axes:
        panel.set_xlabel("step")
        panel.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=_DPI)
    plt.close(figure)
    return True


def reliability(splits: dict[str, tuple[list[float], list[bool]]], path: Path, classes: int = 2) -> None:
    """One reliability diagram per split: accuracy against confidence per bin over the diagonal, the
    bins' example counts below (a bin of three examples says little), the ECE in the title.

    The predicted class's probability is at least 1 / `classes`, so the axis starts at the bin edge below that.
    """
    import numpy as np

    from tunesmith.evaluate.calibration import BINS, expected_calibration_error, reliability_bins

    plt = _pyplot()
    figure, axes = plt.subplots(
        2, len(splits), figsize=(4.4 * len(splits), 5.6), squeeze=False, gridspec_kw={"height_ratios": [3, 1]}
    )
    width = 1.0 / BINS
    start = math.floor(BINS / max(classes, 1)) / BINS
    for column, (split, (confidence, correct)) in enumerate(splits.items()):
        bins = reliability_bins(confidence, correct)
        centres = [(b.lower + b.upper) / 2 for b in bins]
        accuracy = [0.0 if b.count == 0 else b.accuracy for b in bins]
        mean_confidence = [b.confidence if b.count else (b.lower + b.upper) / 2 for b in bins]
        top, bottom = axes[0][column], axes[1][column]
        top.bar(centres, accuracy, width=width, color="tab:blue", edgecolor="white", label="accuracy")
        # The gap between accuracy and the bin's mean confidence, hatched over or above the bar, where the bin
        # has examples: above the bar the model was overconfident, over it underconfident.
        gaps = [(c, a, m) for c, a, m, b in zip(centres, accuracy, mean_confidence, bins, strict=True) if b.count]
        top.bar(
            [c for c, _, _ in gaps],
            [abs(m - a) for _, a, m in gaps],
            bottom=[min(a, m) for _, a, m in gaps],
            width=width,
            facecolor=(0.84, 0.15, 0.16, 0.25),
            edgecolor="tab:red",
            hatch="//",
            label="gap to mean confidence",
        )
        top.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
        top.set_xlim(start, 1)
        top.set_ylim(0, 1)
        top.set_ylabel("accuracy")
        ece = expected_calibration_error(confidence, correct)
        top.set_title(f"Reliability ({split}): ECE {ece:.4f}")
        top.legend(loc="upper left", fontsize=8)
        bottom.bar(centres, [b.count for b in bins], width=width, color="tab:grey", edgecolor="white")
        bottom.set_xlim(start, 1)
        bottom.set_xlabel("confidence (probability of the predicted class)")
        bottom.set_ylabel("examples")
        if max((b.count for b in bins), default=0) > 20 * max(np.median([b.count for b in bins if b.count]), 1):
            bottom.set_yscale("log")
    figure.tight_layout()
    figure.savefig(path, dpi=_DPI)
    plt.close(figure)


def predicted_vs_gold(splits: dict[str, tuple[list[float], list[float]]], name: str, path: Path) -> None:
    """Per split: predicted against gold over the diagonal, and the residuals (predicted - gold) against gold."""
    import numpy as np

    plt = _pyplot()
    figure, axes = plt.subplots(len(splits), 2, figsize=(9, 4 * len(splits)), squeeze=False)
    for row, (split, (gold, predicted)) in enumerate(splits.items()):
        gold_array, predicted_array = np.asarray(gold), np.asarray(predicted)
        low = float(min(gold_array.min(), predicted_array.min()))
        high = float(max(gold_array.max(), predicted_array.max()))
        # Many points hide each other; transparency shows where they pile up.
        alpha = 0.6 if len(gold_array) < 500 else 0.25
        scatter, residuals = axes[row]
        scatter.scatter(gold_array, predicted_array, s=10, alpha=alpha, color="tab:blue")
        scatter.plot([low, high], [low, high], linestyle="--", color="grey", linewidth=1)
        scatter.set_xlabel(f"gold {name}")
        scatter.set_ylabel(f"predicted {name}")
        scatter.set_title(f"Predicted against gold ({split})")
        residuals.scatter(gold_array, predicted_array - gold_array, s=10, alpha=alpha, color="tab:orange")
        residuals.axhline(0, linestyle="--", color="grey", linewidth=1)
        residuals.set_xlabel(f"gold {name}")
        residuals.set_ylabel("predicted - gold")
        residuals.set_title(f"Residuals ({split})")
        for panel in (scatter, residuals):
            panel.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=_DPI)
    plt.close(figure)
