"""What the commands do alike: read `CONFIG key=value` items, silence the libraries for the whole process,
check and write --output, and show predictions as lines, JSON lines or CSV.

cli.py and the command modules of causal/, fewshot/ and pretrain/ share these.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from pathlib import Path
from typing import Any

from tunesmith.config import DataConfig, RunConfig
from tunesmith.errors import UserError


def show_predictions(
    output: Path | None, rows: list[dict[str, Any]], texts: list[str], results: list[dict[str, Any]], one_per_line: bool
) -> None:
    """Predictions to --output (CSV or JSON lines), else to stdout: a line per --text, JSON lines for a file."""
    if output:
        write_output(output, format_predictions(rows, results, as_csv=output.suffix.lower() == ".csv"))
    elif one_per_line:
        for text, result in zip(texts, results, strict=True):
            print(f"{_one_line(result)}\t{text}")
    else:
        sys.stdout.write(format_predictions(rows, results, as_csv=False))


def check_output_file(output: str | None, run_dir: Path, inputs: dict[str, Path]) -> Path | None:
    """--output as a path, refused before any work where writing it would destroy an input
    (the same file by another path, a link or a hard link; a file of the run folder) or must fail."""
    if output is None:
        return None
    path = Path(output)
    for flag, source in inputs.items():
        if _same_file(path, source):
            raise UserError(
                f"--output {path} is the {flag} file {source} (the same file, by another path or through a link), "
                "and writing the results there would destroy it. Give --output a new file name."
            )
        if source.is_dir() and path.resolve().is_relative_to(source.resolve()):
            raise UserError(
                f"--output {path} lies inside the {flag} folder {source}, a saved dataset that is not tunesmith's "
                "to change. Write the results outside it."
            )
    if path.exists() and path.resolve().is_relative_to(run_dir.resolve()):
        raise UserError(
            f"--output {path} is a file of the run folder {run_dir}, which writing the results would replace. "
            "Give --output a file outside the run folder, or a new file name."
        )
    if path.is_dir():
        raise UserError(f"--output {path} is a folder. Give a file name, e.g. {path / 'predictions.csv'}.")
    if not path.parent.is_dir():
        raise UserError(f"--output {path}: the folder {path.parent} does not exist. Create it, or write elsewhere.")
    return path


def _same_file(path: Path, other: Path) -> bool:
    try:
        return path.exists() and os.path.samefile(path, other)
    except OSError:
        return False


def run_data_config(config: RunConfig, fmt: str | None) -> DataConfig:
    """The run's data settings, with --format in place of the saved format when given."""
    return config.data.model_copy(update={"format": fmt}) if fmt else config.data


def split_items(items: list[str]) -> tuple[Path | None, list[str]]:
    configs = [item for item in items if "=" not in item]
    if len(configs) > 1:
        raise UserError(f"Give one config file, not {len(configs)}: {', '.join(configs)}.")
    return (Path(configs[0]) if configs else None), [item for item in items if "=" in item]


def _one_line(result: dict[str, Any]) -> str:
    """A prediction as a short line: label and score, value, labels, or entities."""
    if "label" in result:
        return f"{result['label']}\t{result['score']:.4f}"
    if "value" in result:
        return f"{result['value']:.4f}"
    if "labels" in result:
        return ",".join(result["labels"]) or "(none)"
    return " ".join(f"[{e['text']}]{e['type']}" for e in result["entities"]) or "(no entities)"


def _csv_fields(result: dict[str, Any]) -> dict[str, str]:
    """A prediction's flat fields for CSV: a p_<label> column per probability, lists joined, entities as JSON."""
    fields = {}
    for key, value in result.items():
        if key == "probabilities":
            fields.update({f"p_{name}": f"{probability:.6f}" for name, probability in value.items()})
        elif key == "entities":
            fields[key] = json.dumps(value, ensure_ascii=False)
        elif isinstance(value, list):
            fields[key] = ",".join(value)
        elif isinstance(value, float):
            fields[key] = f"{value:.6f}"
        else:
            fields[key] = str(value)
    return fields


def _csv_value(value: Any) -> str:
    """An input value as a CSV field: as read for text files; JSON for lists and objects; nothing for null."""
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def format_predictions(rows: list[dict[str, Any]], results: list[dict[str, Any]], as_csv: bool) -> str:
    """One line (JSON) or row (CSV) per input row, in input order: the row's columns, then the prediction's.

    An input column named like a prediction field (a labelled file's "label") is written as
    input_<name>, so that neither hides the other.
    """
    predicted = [_csv_fields(result) for result in results] if as_csv else results
    fields = list(predicted[0]) if predicted else ["label", "score"]
    taken = set(fields) | set(rows[0] if rows else [])
    names = {}
    for name in rows[0] if rows else []:
        new = name
        while new in fields or (new != name and new in taken):
            new = f"input_{new}"
        taken.add(new)
        names[name] = new
    joined = [
        {**{names[key]: value for key, value in row.items()}, **result}
        for row, result in zip(rows, predicted, strict=True)
    ]
    if not as_csv:
        return "".join(json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in joined)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = [*names.values(), *fields]
    writer.writerow(header)
    for row in joined:
        writer.writerow([_csv_value(row.get(name)) for name in header])
    return buffer.getvalue()


def write_output(path: Path, text: str) -> None:
    from tunesmith.runs import write_atomic

    try:
        write_atomic(path, text)
    except OSError as exc:
        raise UserError(f"Cannot write {path} ({exc.strerror}). Check the folder exists and is writable.") from None


def silence_libraries(uses_datasets: bool = True) -> None:
    """Silence transformers' chatter, and datasets' unless `uses_datasets` is False: `predict`
    reads no Dataset, and importing datasets costs 80 MB. The imports take seconds, so each
    command calls this only once its own input has passed the quick checks: a typo is answered at once."""
    # Loading a backbone into a new head always "misses" the head's weights; that is expected.
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    # peft asks transformers a question transformers has renamed; the warning is not the user's to fix.
    import warnings

    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
    hf_logging.disable_progress_bar()
    if uses_datasets:
        import datasets

        datasets.disable_progress_bars()
