"""`tunesmith fewshot`: one config at k examples per class, over several seeds, and a mean ± std table.

Each (k, seed) is a run of its own, <folder>/<k>shot-seed<s>/, whose training examples are drawn by
`data.shots_per_class` with `training.seed` (data/sampling.py); whatever `method` the config names
(finetune, contrastive, zero_shot) trains there. A run that already finished is read back, not
retrained, so an interrupted sweep picks up where it stopped.
"""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path
from typing import Any

from tunesmith.config import RunConfig, load_config
from tunesmith.errors import UserError
from tunesmith.runs import RunFolder, check_output_folder, read_status, write_atomic
from tunesmith.tasks import get_task

RESULTS = ("fewshot.json", "fewshot.md")
RUN_NAME = re.compile(r"\d+shot-seed-?\d+|zero-shot")
BASELINE = "zero-shot"


def parse_shots(text: str) -> list[int]:
    try:
        shots = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        shots = []
    if not shots or any(k < 1 for k in shots):
        raise UserError(f"--shots {text!r}: give whole numbers of examples per class, comma-separated (e.g. 8,64).")
    return list(dict.fromkeys(shots))


def sweep(
    config_path: Path,
    assignments: list[str],
    shots: list[int],
    seeds: list[int],
    output_dir: Path | None,
    overwrite: bool = False,
    baseline: bool = False,
) -> tuple[Path, list[dict[str, Any]]]:
    """Train (or read back) every (k, seed) run; returns the folder and one row per run.

    `baseline`: also a zero-shot run of the same config (its `zero_shot` options; no training examples
    used, so one run whatever the shots and seeds), tabulated first.
    """
    from tunesmith.recipes.finetune import finetune

    base = load_config(config_path, assignments=assignments)
    folder = output_dir or Path("runs") / f"{base.run_name()}-fewshot"
    check_output_folder(folder, RESULTS, RUN_NAME.fullmatch, "fewshot")
    configs: dict[tuple[int, int], RunConfig] = {}
    if baseline:
        placement = ["method=zero_shot", f"name={base.run_name()}-{BASELINE}", f"output_dir={folder / BASELINE}"]
        configs[(0, 0)] = load_config(config_path, assignments=[*assignments, *placement])
    for k in shots:
        for seed in seeds:
            configs[(k, seed)] = load_config(
                config_path, assignments=[*assignments, *_placement(base, folder, k, seed)]
            )
    # Every folder is checked before the first run trains: a sweep should not stop half-way on one.
    todo = [key for key, cfg in configs.items() if overwrite or read_status(cfg.run_dir()) != "finished"]
    for key in todo:
        RunFolder.check_replaceable(configs[key].run_dir(), overwrite)
    rows = []
    for key, cfg in configs.items():
        if key in todo:
            finetune(cfg, overwrite=overwrite)
        rows.append(row(*key, cfg))
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / "fewshot.json", json.dumps(rows, indent=2) + "\n")
    write_atomic(folder / "fewshot.md", table(rows))
    return folder, rows


def _placement(base: RunConfig, folder: Path, shots: int, seed: int) -> list[str]:
    name = f"{shots}shot-seed{seed}"
    return [
        f"data.shots_per_class={shots}",
        f"training.seed={seed}",
        f"name={base.run_name()}-{name}",
        f"output_dir={folder / name}",
    ]


def row(shots: int, seed: int, cfg: RunConfig) -> dict[str, Any]:
    metric = cfg.training.metric_for_best or get_task(cfg).main_metric
    metrics = json.loads((cfg.run_dir() / "metrics.json").read_text(encoding="utf-8"))
    return {
        "shots": shots,
        "seed": seed,
        "method": cfg.method,
        "run": str(cfg.run_dir()),
        "metric": metric,
        "validation": metrics.get("validation", {}).get(metric),
        "test": metrics.get("test", {}).get(metric),
        "train_time_s": metrics["training"]["train_time_s"],
    }


def mean_std(values: list[float | None], digits: int = 4) -> str:
    """Mean ± sample standard deviation (0 for one value); empty when nothing was measured."""
    present = [value for value in values if value is not None]
    if not present:
        return ""
    spread = statistics.stdev(present) if len(present) > 1 else 0.0
    return f"{statistics.mean(present):.{digits}f} ± {spread:.{digits}f}"


def table(rows: list[dict[str, Any]]) -> str:
    metric = rows[0]["metric"] if rows else "metric"
    lines = [
        f"| shots per class | method | seeds | validation {metric} | test {metric} | train time (s) |",
        "|---|---|---|---|---|---|",
    ]
    for shots in dict.fromkeys(entry["shots"] for entry in rows):
        group = [entry for entry in rows if entry["shots"] == shots]
        validation, test = mean_std([e["validation"] for e in group]), mean_std([e["test"] for e in group])
        times = mean_std([entry["train_time_s"] for entry in group], digits=1)
        lines.append(f"| {shots or 'none'} | {group[0]['method']} | {len(group)} | {validation} | {test} | {times} |")
    return "\n".join(lines) + "\n"
