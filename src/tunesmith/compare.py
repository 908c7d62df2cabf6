"""`tunesmith compare`: the same config trained under several strategies, and one table.

Each strategy trains in its own process, so that its peak memory is its own (the
resident-set peak of a process never goes down) and one crash does not end the others.
Runs land in <compare folder>/<strategy>/; a strategy whose run already finished there
is read back instead of retrained, so an interrupted comparison picks up where it stopped.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tunesmith.config import STRATEGIES, RunConfig, load_config
from tunesmith.errors import UserError
from tunesmith.runs import RunFolder, check_output_folder, read_status, resume_point, write_atomic
from tunesmith.tasks import get_task

# What compare writes beside the strategies' run folders.
RESULTS = ("compare.json", "compare.md")


def parse_strategies(text: str) -> list[str]:
    chosen = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in STRATEGIES]
    if unknown or not chosen:
        raise UserError(
            f"--strategies {text!r}: unknown strategy {', '.join(map(repr, unknown)) or '(none given)'}. "
            f"Choose from: {', '.join(STRATEGIES)}."
        )
    return list(dict.fromkeys(chosen))


def compare(
    config_path: Path, assignments: list[str], strategies: list[str], output_dir: Path | None, overwrite: bool
) -> tuple[Path, list[dict[str, Any]]]:
    """Train under each strategy (or read back its finished run); returns the table's folder and rows."""
    base = load_config(config_path, assignments=assignments)
    folder = output_dir or Path("runs") / f"{base.run_name()}-compare"
    check_output_folder(folder, RESULTS, STRATEGIES.__contains__, "compare")
    # Every config is checked before anything trains: a typo should not surface after an hour.
    configs = {
        name: load_config(config_path, assignments=[*assignments, *_placement(base, folder, name)])
        for name in strategies
    }
    trained = [name for name, cfg in configs.items() if overwrite or read_status(cfg.run_dir()) != "finished"]
    for name in trained:
        # So is each run folder (`train` checks it again): a folder it may not replace ends the comparison
        # before the first strategy trains, not after.
        checkpoint, _ = resume_point(configs[name].run_dir(), overwrite)
        if checkpoint is None:
            RunFolder.check_replaceable(configs[name].run_dir(), overwrite)
    rows = []
    for name, cfg in configs.items():
        if name in trained:
            _train(config_path, [*assignments, *_placement(base, folder, name)], overwrite)
        rows.append(row(name, cfg, cfg.run_dir()))
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / "compare.json", json.dumps(rows, indent=2) + "\n")
    write_atomic(folder / "compare.md", table(rows))
    return folder, rows


def _placement(base: RunConfig, folder: Path, strategy: str) -> list[str]:
    return [f"strategy={strategy}", f"name={base.run_name()}-{strategy}", f"output_dir={folder / strategy}"]


def _train(config_path: Path, assignments: list[str], overwrite: bool) -> None:
    command = [sys.executable, "-m", "tunesmith", "train", str(config_path), *assignments]
    if overwrite:
        command.append("--overwrite")
    code = subprocess.run(command, check=False).returncode
    if code == UserError.exit_code:
        raise UserError(f"`{' '.join(command[2:])}` stopped on bad input (its message is above).")
    if code in (130, 143):
        raise KeyboardInterrupt
    # Any other failure leaves the run folder marked failed; the table shows it and the others go on.


def row(strategy: str, cfg: RunConfig, run_dir: Path) -> dict[str, Any]:
    metric = cfg.training.metric_for_best or get_task(cfg).main_metric
    status = read_status(run_dir)
    if status != "finished":
        return {"strategy": strategy, "status": status or "missing", "run": str(run_dir), "metric": metric}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    training = metrics["training"]
    return {
        "strategy": strategy,
        "status": status,
        "run": str(run_dir),
        "metric": metric,
        "validation": metrics.get("validation", {}).get(metric),
        "test": metrics.get("test", {}).get(metric),
        "trainable_parameters": training["trainable_parameters"],
        "total_parameters": training["total_parameters"],
        "train_time_s": training["train_time_s"],
        "samples_per_s": training["samples_per_s"],
        "peak_memory_mb": training["peak_memory_mb"],
    }


def table(rows: list[dict[str, Any]]) -> str:
    metric = rows[0]["metric"] if rows else "metric"
    lines = [
        f"| strategy | validation {metric} | test {metric} | trainable parameters | trainable % | "
        "train time (s) | samples/s | peak memory (MB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for entry in rows:
        if entry["status"] != "finished":
            lines.append(f"| {entry['strategy']} | {entry['status']} | | | | | | |")
            continue
        share = 100 * entry["trainable_parameters"] / entry["total_parameters"]
        lines.append(
            f"| {entry['strategy']} | {_score(entry['validation'])} | {_score(entry['test'])} | "
            f"{entry['trainable_parameters']:,} | {share:.2f} | {entry['train_time_s']:.0f} | "
            f"{entry['samples_per_s']:.1f} | {entry['peak_memory_mb']:,.0f} |"
        )
    return "\n".join(lines) + "\n"


def _score(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"
