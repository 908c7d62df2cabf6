"""report.md: what a person reads first after a run."""

from __future__ import annotations

from typing import Any

HEADLINE = ["accuracy", "f1_macro", "f1_micro", "f1_weighted", "precision_macro", "recall_macro", "mcc", "loss"]


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def metrics_table(metrics: dict[str, dict[str, Any]]) -> str:
    splits = [split for split in ("validation", "test") if split in metrics]
    rows = ["| metric | " + " | ".join(splits) + " |", "|---|" + "---|" * len(splits)]
    for key in HEADLINE:
        if any(key in metrics[split] for split in splits):
            rows.append(f"| {key} | " + " | ".join(_fmt(metrics[split].get(key, "")) for split in splits) + " |")
    return "\n".join(rows)


def per_class_table(split_metrics: dict[str, Any]) -> str:
    rows = ["| label | precision | recall | f1 | support |", "|---|---|---|---|---|"]
    for name, row in split_metrics["per_class"].items():
        rows.append(
            f"| {name} | {row['precision']:.4f} | {row['recall']:.4f} | {row['f1-score']:.4f} | {int(row['support'])} |"
        )
    return "\n".join(rows)


def confusion_table(split_metrics: dict[str, Any], names: list[str]) -> str:
    rows = ["| true \\ predicted | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for name, counts in zip(names, split_metrics["confusion_matrix"], strict=True):
        rows.append(f"| {name} | " + " | ".join(str(c) for c in counts) + " |")
    return "\n".join(rows)


def render(run_name: str, model: str, metrics: dict[str, Any], names: list[str]) -> str:
    training = metrics["training"]
    parts = [
        f"# Run {run_name}",
        "",
        f"Model `{model}`, {len(names)} labels, {training['steps']} steps ({training['epochs']} epochs) "
        f"in {training['train_time_s']:.1f} s at {training['samples_per_s']:.1f} samples/s; "
        f"{training['trainable_parameters']:,} trainable of {training['total_parameters']:,} parameters; "
        f"peak memory {training['peak_memory_mb']:.0f} MB.",
        "",
        "## Metrics",
        "",
        metrics_table(metrics),
    ]
    for split in ("test", "validation"):
        if split in metrics:
            parts += ["", f"## Per label ({split})", "", per_class_table(metrics[split])]
            parts += ["", f"## Confusion matrix ({split})", "", confusion_table(metrics[split], names)]
            break
    return "\n".join(parts) + "\n"
