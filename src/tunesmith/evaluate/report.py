"""report.md: what a person reads first after a run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tunesmith.run_list import KEY_METRICS

if TYPE_CHECKING:
    from tunesmith.tasks import TaskInfo

# The metrics shown in tables, in this order, whichever of them a task reports.
HEADLINE = [
    "accuracy",
    "f1",
    "precision",
    "recall",
    "f1_macro",
    "f1_micro",
    "f1_weighted",
    "precision_macro",
    "recall_macro",
    "mcc",
    "ece",
    "subset_accuracy",
    "hamming_loss",
    "pearson",
    "spearman",
    "mse",
    "rmse",
    "mae",
    "exact_match",
    "rouge_l",
    "perplexity",
    "loss",
]


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def metrics_table(metrics: dict[str, dict[str, Any]]) -> str:
    splits = [split for split in ("validation", "test") if split in metrics]
    rows = ["| metric | " + " | ".join(splits) + " |", "|---|" + "---|" * len(splits)]
    for key in HEADLINE:
        if any(key in metrics[split] for split in splits):
            rows.append(f"| {key} | " + " | ".join(_fmt(metrics[split].get(key, "")) for split in splits) + " |")
    return "\n".join(rows)


def per_class_table(split_metrics: dict[str, Any], row_name: str = "label") -> str:
    rows = [f"| {row_name} | precision | recall | f1 | support |", "|---|---|---|---|---|"]
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


def samples_table(samples: list[dict[str, str]]) -> str:
    """A generative run's sample generations beside their references (line breaks shown as ↵)."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", "↵")

    rows = ["| prompt | reference | generated |", "|---|---|---|"]
    rows += [f"| {cell(s['prompt'])} | {cell(s['reference'])} | {cell(s['generated'])} |" for s in samples]
    return "\n".join(rows)


def baselines_table(metrics: dict[str, Any], keys: list[str], target: str) -> str:
    """The run against each baseline: one row each, one column per split and key metric."""
    from tunesmith.evaluate.baselines import LABELS

    found, labels = metrics.get("baselines"), LABELS.get(target, {})
    if not isinstance(found, dict):
        return ""
    systems = [name for name in labels if isinstance(found.get(name), dict) and found[name]]
    columns = [
        (split, key)
        for split in ("validation", "test")
        for key in keys
        if isinstance(metrics.get(split), dict)
        and key in metrics[split]
        and any(key in found[name].get(split, {}) for name in systems)
    ]
    if not systems or not columns:
        return ""
    rows = ["| | " + " | ".join(f"{split} {key}" for split, key in columns) + " |", "|---|" + "---|" * len(columns)]
    rows.append("| **this run** | " + " | ".join(f"**{_fmt(metrics[split][key])}**" for split, key in columns) + " |")
    for name in systems:
        cells = [_fmt(found[name].get(split, {}).get(key, "")) for split, key in columns]
        rows.append(f"| {labels[name]} | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n\n" + baselines_note(found, systems, target)


def baselines_note(found: dict[str, Any], systems: list[str], target: str) -> str:
    """What the baselines of the table are, and on how many training rows they were fitted."""

    def fitted(key: str) -> str:
        rows = found.get(key)
        return f" fitted on {rows:,} training rows" if isinstance(rows, int) else ""

    said = []
    if "majority" in systems or "mean" in systems:
        said.append("by a model that learns nothing")
    if "tfidf" in systems:
        said.append(
            f"by a bag of character 1-4-grams (TF-IDF) under a linear model{fitted('train_rows')} (a pair: both "
            "sides' vectors and their cosine)"
        )
    if "probe" in systems:
        said.append(
            f"by the pretrained model before fine-tuning: a linear model on its frozen mean-pooled embeddings"
            f"{fitted('probe_rows')} (a pair: u, v, |u - v|, u * v and their cosine)"
        )
    if "zero_shot" in systems and target == "number":
        said.append("by the pretrained sentence encoder zero-shot: the cosine of the pair, put on the target's scale")
    elif "zero_shot" in systems:
        said.append("by the pretrained sentence encoder zero-shot: the label whose name's prompt is most similar")
    return "The same splits scored " + "; ".join(said) + "."


def continual_table(continual: dict[str, Any]) -> str:
    """The old task's main metric before and after this run (its forgetting), and what protected it."""
    old = continual["old_task"]
    metric = old["metric"]
    rows = [
        f"| old task ({old['task']}) | split | {metric} before | {metric} after | forgetting |",
        "| --- | --- | --- | --- | --- |",
        f"| `{continual['from_run']}` | {old['split']} | {_fmt(old['before'][metric])} | "
        f"{_fmt(old['after'][metric])} | {_fmt(old['forgetting'])} |",
    ]
    used = ", ".join(f"{key} {value}" for key, value in continual.get("protection", {}).items())
    note = (
        f"The old run's model scored on its {old['split']} split ({old['examples']:,} examples) before training, "
        f"then the same with this run's encoder and the old head after it. Protection: {used or 'none'}."
    )
    return "\n".join(rows) + "\n\n" + note


def render(run_name: str, model: str, task: TaskInfo, metrics: dict[str, Any], names: list[str]) -> str:
    training = metrics["training"]
    what = task.labels_summary.format(count=len(names))
    # A continual run's weights come from the run it continues, not straight from `model`.
    continued = metrics.get("continual", {}).get("from_run")
    source = f"model `{model}`" + (f" by way of the run `{continued}`" if continued else "")
    parts = [
        f"# Run {run_name}",
        "",
        f"Task {task.name}, {source}, {what}, {training['steps']} steps ({training['epochs']} epochs) "
        f"in {training['train_time_s']:.1f} s at {training['samples_per_s']:.1f} samples/s; "
        f"{training['trainable_parameters']:,} trainable of {training['total_parameters']:,} parameters; "
        f"peak memory {training['peak_memory_mb']:.0f} MB.",
        "",
        "## Metrics",
        "",
        metrics_table(metrics),
    ]
    keys = KEY_METRICS[task.name] + (["mse"] if task.target == "number" else [])
    compared = baselines_table(metrics, keys, task.target)
    if compared:
        parts += ["", "## Baselines", "", compared]
    continual = metrics.get("continual")
    if isinstance(continual, dict):
        parts += ["", "## Continual learning", "", continual_table(continual)]
    truncated = {split: count for split, count in training["truncated"].items() if count}
    if truncated:
        counts = ", ".join(
            f"{count:,} of {training['examples'][split]:,} {split}" for split, count in truncated.items()
        )
        parts += ["", f"Examples cut at max_length: {counts}."]
    for split in ("validation", "test"):
        if split in metrics and metrics[split].get("samples"):
            parts += ["", f"## Generations ({split})", "", samples_table(metrics[split]["samples"])]
            break
    for split in ("test", "validation"):
        if split in metrics and "per_class" in metrics[split]:
            row_name = task.class_noun
            parts += ["", f"## Per {row_name} ({split})", "", per_class_table(metrics[split], row_name)]
            if "confusion_matrix" in metrics[split]:
                parts += ["", f"## Confusion matrix ({split})", "", confusion_table(metrics[split], names)]
            break
    return "\n".join(parts) + "\n"
