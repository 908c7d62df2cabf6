"""report.md and its figures, built from a run folder's files alone.

The end of a run and `tunesmith report RUN` both come here, so that a rebuilt report is the
report the run wrote: metrics.json, labels.json, history.jsonl, predictions.jsonl,
explanations.json and config.yaml are all it reads.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tunesmith.errors import UserError
from tunesmith.evaluate import figures, html, parts, report
from tunesmith.run_list import KEY_METRICS
from tunesmith.runs import run_config, write_atomic
from tunesmith.tasks import TASKS


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path} is missing, so the report cannot be built. Is this a finished run folder?") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"{path} is not readable JSON ({exc}). The run folder is damaged.") from None


def history(path: Path) -> list[dict[str, Any]]:
    """history.jsonl's records; a damaged line is skipped (the curves lose a point, not the report)."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


# What `report.format` (`tunesmith report --format`) writes.
FILES = {"md": ("report.md",), "html": ("report.html",), "both": ("report.md", "report.html")}


def write_report(run_dir: Path, form: str | None = None) -> list[str]:
    """Write report.md and/or report.html (`form`: md, html or both; the run's `report.format` when None)
    and the PNG figures into `run_dir`; returns the figures drawn."""
    cfg = run_config(run_dir)
    form = form or cfg.report.format
    metrics, names = _json(run_dir / "metrics.json"), _json(run_dir / "labels.json")
    info = TASKS[cfg.task]
    context = parts.Context(
        run_dir,
        metrics,
        names,
        parts.read_examples(run_dir / parts.PREDICTIONS),
        parts.read_explanations(run_dir / parts.EXPLANATIONS),
    )
    drawn = draw(run_dir, cfg.task, cfg.training.metric_for_best, metrics, names, context)
    text = report.render(cfg.run_name(), cfg.model, info, metrics, names)
    examined = parts.text(info.target, context)
    if examined:
        text += "\n" + examined + "\n"
    if drawn:
        text += "\n## Figures\n\n" + "\n\n".join(f"![{name[:-4].replace('_', ' ')}]({name})" for name in drawn) + "\n"
    for stale in set(figures.FIGURES) - set(drawn):  # a figure of an earlier build that no longer applies
        (run_dir / stale).unlink(missing_ok=True)
    if "report.md" in FILES[form]:
        write_atomic(run_dir / "report.md", text)
    if "report.html" in FILES[form]:
        write_atomic(run_dir / "report.html", html.render(text, run_dir, f"Run {cfg.run_name()}"))
    return drawn


def draw(
    run_dir: Path,
    task: str,
    metric: str | None,
    metrics: dict[str, Any],
    names: list[str],
    context: parts.Context | None = None,
) -> list[str]:
    drawn = []
    for split in ("test", "validation"):
        scores = metrics.get(split)
        if not isinstance(scores, dict) or "per_class" not in scores:
            continue
        if "confusion_matrix" in scores:
            figures.confusion_matrix(scores, names, run_dir / "confusion_matrix.png", split)
            drawn.append("confusion_matrix.png")
        figures.per_class_f1(scores, run_dir / "per_class_f1.png", split, TASKS[task].class_noun)
        drawn.append("per_class_f1.png")
        break
    metric = metric if metric and metric != "loss" else KEY_METRICS[task][0]
    if figures.learning_curves(history(run_dir / "history.jsonl"), metric, run_dir / "learning_curves.png"):
        drawn.append("learning_curves.png")
    if context is not None:
        drawn += parts.draw(TASKS[task].target, context)
    return drawn
