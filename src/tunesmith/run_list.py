"""`tunesmith runs [DIR]`: the run folders under DIR as one table.

Only reads: status.json, config.yaml and metrics.json of each folder that `run_marker`
recognises (a folder is never taken for a run on a look-alike file). Runs sit at most two
levels down, so that the runs of `compare` and `search` (DIR/<name>-compare/<strategy>/) show too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tunesmith.errors import UserError
from tunesmith.runs import run_marker

# The metrics a table shows per task, the first one being what `--sort metric` sorts by.
KEY_METRICS = {
    "classification": ["accuracy", "f1_macro"],
    "regression": ["pearson", "spearman"],
    "multilabel": ["f1_micro", "f1_macro"],
    "ner": ["f1", "precision", "recall"],
    "causal": ["exact_match", "rouge_l", "perplexity"],
}
COLUMNS = ("run", "status", "task", "model", "strategy", "metric", "validation", "test", "train_s", "time")
# Sorting descending makes the best (or latest) run come first for these.
DESCENDING = {"validation", "test", "time", "train_s"}


def find_runs(folder: Path, depth: int = 2) -> list[Path]:
    """Run folders at `folder` or up to `depth` levels below it, sorted by path."""
    if not folder.is_dir():
        what = "is a file" if folder.exists() else "does not exist"
        raise UserError(f"{folder} {what}. Give the folder that holds run folders (default runs/).")
    if run_marker(folder) is not None:
        return [folder]
    found = []
    if depth > 0:
        for entry in sorted(folder.iterdir()):
            if entry.is_dir() and not entry.is_symlink():
                found += find_runs(entry, depth - 1)
    return found


def _read(path: Path, parse: Any) -> Any:
    try:
        return parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError):
        return None


def describe(folder: Path, root: Path) -> dict[str, Any]:
    """One run's row: what it was, how it ended, its key metrics and its training time."""
    status = run_marker(folder) or {}
    config = _read(folder / "config.yaml", yaml.safe_load)
    config = config if isinstance(config, dict) else {}
    metrics = _read(folder / "metrics.json", json.loads)
    metrics = metrics if isinstance(metrics, dict) else {}
    task = config.get("task", "classification") if config else None
    names = KEY_METRICS.get(task or "", [])
    model = str(config.get("model", ""))
    row: dict[str, Any] = {
        "run": str(folder.relative_to(root)) if folder != root else folder.name,
        "status": status.get("status"),
        "task": task,
        "model": Path(model).name if "/" in model and Path(model).exists() else model,
        # A zero-shot or contrastive run trains no task head under a strategy: its method says what it is.
        "strategy": config.get("strategy") if config.get("method", "finetune") == "finetune" else config["method"],
        "metric": names[0] if names else None,
        "time": status.get("time"),
        "train_s": (metrics.get("training") or {}).get("train_time_s"),
    }
    for split in ("validation", "test"):
        scores = metrics.get(split) if isinstance(metrics.get(split), dict) else {}
        row[split] = scores.get(names[0]) if names else None
        row[f"{split}_metrics"] = {name: scores[name] for name in names if isinstance(scores.get(name), (int, float))}
    return row


def list_runs(folder: Path, sort: str = "time") -> list[dict[str, Any]]:
    if sort not in COLUMNS:
        raise UserError(f"--sort {sort!r}: sort by one of {', '.join(COLUMNS)}.")
    rows = [describe(run, folder) for run in find_runs(folder)]
    present = [row for row in rows if row.get(sort) is not None]
    absent = [row for row in rows if row.get(sort) is None]
    present.sort(
        key=lambda row: row[sort] if not isinstance(row[sort], str) else row[sort].lower(), reverse=sort in DESCENDING
    )
    return present + absent  # runs without the value (unfinished, another task) last, whatever the order


def table(rows: list[dict[str, Any]]) -> str:
    """A fixed-width table; metrics to four places, times in seconds."""
    if not rows:
        return "No runs found."
    shown = [[_cell(row.get(column), column) for column in COLUMNS] for row in rows]
    widths = [max(len(column), *(len(line[i]) for line in shown)) for i, column in enumerate(COLUMNS)]
    numeric = {"validation", "test", "train_s"}

    def line(cells: list[str]) -> str:
        return "  ".join(
            cell.rjust(width) if column in numeric else cell.ljust(width)
            for column, cell, width in zip(COLUMNS, cells, widths, strict=True)
        ).rstrip()

    return "\n".join([line(list(COLUMNS)), line(["-" * width for width in widths]), *(line(cells) for cells in shown)])


def _cell(value: Any, column: str) -> str:
    if value is None:
        return "-"
    if column == "train_s" and isinstance(value, (int, float)):
        return f"{value:,.1f}"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)
