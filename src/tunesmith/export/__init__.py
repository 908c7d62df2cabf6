"""`tunesmith export`: a finished run as a merged Hugging Face model or ONNX (fp32 or int8), gated on parity.

export_run reads top to bottom: check the run and the destination, load the model, write the
export into a staging folder, load it back as a user would, re-score validation examples with
both, and rename the staging folder into place only if the gate passes. folder.py says what an
export holds; runtime.py runs one (`tunesmith.load(export_dir)` does it for you).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tunesmith.errors import UserError
from tunesmith.export.folder import (
    EXPORT_FILE,
    MODEL_FOLDER,
    ONNX_FILE,
    PARITY_FILE,
    check_output,
    default_output,
    is_export,
    staged,
    write_json,
)
from tunesmith.export.parity import Gate

QUANTIZATIONS = ("int8",)


class GateFailed(UserError):
    """The export does not predict as the run does: nothing was written, and the exit code is 1."""

    exit_code = 1


@dataclass
class Exported:
    path: Path
    parity: dict[str, Any]


def export_run(
    run_dir: Path,
    fmt: str,
    quantize: str | None = None,
    output: Path | None = None,
    overwrite: bool = False,
    gate: Gate | None = None,
    data: Path | None = None,
    examples: int = 1000,
) -> Exported:
    from tunesmith.export.merged import plain_model
    from tunesmith.export.parity import validation_data
    from tunesmith.predictor import Predictor

    run_dir = Path(run_dir)
    check_request(run_dir, fmt, quantize, examples)
    output = Path(output) if output is not None else default_output(run_dir, fmt, quantize)
    check_output(output, overwrite)
    gate = gate or Gate.default(quantized=quantize is not None)
    # The run as a user predicts with it is the reference. The export comes from a second copy, since
    # merging changes a peft model in place; that copy has the prediction speed patches too (a sequence
    # head's last layer computes the first token only), which trace into the ONNX graph as they run.
    reference = Predictor.from_run(run_dir)
    source = Predictor.from_run(run_dir)
    model = plain_model(source.model, source.config, fmt)
    labelled = validation_data(reference, data, examples)  # before anything is written: a bad --data fails early
    with staged(output) as folder:
        inputs = _write_model(folder, source, model, fmt, quantize)
        _write_run_files(folder, run_dir, source)
        parity = _gate(folder, fmt, reference, labelled, gate, data or "the run's validation split")
        manifest = {
            "format": fmt,
            "quantize": quantize,
            "task": source.config.task,
            "source_run": str(run_dir.resolve()),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "tunesmith": _version(),
            "inputs": inputs,
            "model": f"{MODEL_FOLDER}/{ONNX_FILE}" if fmt == "onnx" else MODEL_FOLDER,
        }
        # Last: a folder with export.json in it is a finished export.
        write_json(folder / EXPORT_FILE, manifest)
    return Exported(output, parity)


def check_request(run_dir: Path, fmt: str, quantize: str | None, examples: int) -> None:
    from tunesmith.runs import check_finished

    if is_export(run_dir):
        raise UserError(f"{run_dir} is already an export (it holds {EXPORT_FILE}). Export the run it came from.")
    check_finished(run_dir)
    from tunesmith.runs import run_config
    from tunesmith.tasks import task_info

    config = run_config(run_dir)
    if task_info(config.task).generative:
        raise UserError(
            f"{run_dir} is a run of task causal, which export does not handle yet (its parity gate compares "
            "classifier outputs). Its model/ folder is already a plain transformers model (LoRA merged in), "
            "for transformers' pipeline or an ONNX exporter of decoders such as optimum."
        )
    if config.method != "finetune":
        raise UserError(
            f"{run_dir} is a method {config.method} run, which export does not handle yet (it exports a model with "
            "a task head). Predict and serve it from the run folder itself: tunesmith predict / serve RUN."
        )
    if quantize is not None and fmt != "onnx":
        raise UserError(f"--quantize {quantize} applies to --format onnx only, not --format {fmt}.")
    if examples < 1:
        raise UserError(f"--parity-examples {examples}: the gate needs at least 1 example.")


def _write_model(folder: Path, source: Any, model: Any, fmt: str, quantize: str | None) -> list[str]:
    """model/: the weights in `fmt`, the tokenizer, and config.json (label names, positions)."""
    from tunesmith.export.merged import save_hf

    target = folder / MODEL_FOLDER
    target.mkdir()
    if fmt == "hf":
        save_hf(model, source.tokenizer, target)
        return list(source.tokenizer.model_input_names)
    from tunesmith.export.onnx import example_batch, export_onnx
    from tunesmith.tasks import task_info

    batch = example_batch(source.task, source.tokenizer, pairs=source.config.data.text_pair_column is not None)
    token_level = task_info(source.config.task).token_level
    model.config.save_pretrained(target)
    source.tokenizer.save_pretrained(target)
    if quantize is None:
        return export_onnx(model, batch, token_level, target / ONNX_FILE)
    from tunesmith.export.quantize import quantize_int8

    full = folder / "fp32.onnx"
    names = export_onnx(model, batch, token_level, full)
    quantize_int8(full, target / ONNX_FILE)
    full.unlink()
    return names


def _write_run_files(folder: Path, run_dir: Path, source: Any) -> None:
    """What predicting needs besides the model: the config and the task's state."""
    shutil.copyfile(run_dir / "config.yaml", folder / "config.yaml")
    write_json(folder / "task.json", source.task.state())
    write_json(folder / "labels.json", source.task.names)


def _gate(folder: Path, fmt: str, reference: Any, labelled: Any, gate: Gate, data: Any) -> dict[str, Any]:
    """The export loaded back as a user would, scored and timed against the run; parity.json; GateFailed."""
    from tunesmith.export.parity import compare, failures, score
    from tunesmith.export.runtime import load_export
    from tunesmith.export.timing import measure, raw_texts

    candidate = load_export(folder, fmt=fmt)
    report = compare(reference, score(reference, labelled), score(candidate, labelled))
    texts, pairs = raw_texts(labelled)
    timing = {"pytorch": measure(reference, texts, pairs), "export": measure(candidate, texts, pairs)}
    speedup = timing["export"]["batch_32"]["texts_per_s"] / timing["pytorch"]["batch_32"]["texts_per_s"]
    found = failures(report, gate)
    parity = {
        **report,
        "data": str(data),
        "gate": asdict(gate),
        "passed": not found,
        "failures": found,
        "timing": timing,
        "throughput_ratio_batch_32": round(speedup, 3),
    }
    write_json(folder / PARITY_FILE, parity)
    if found:
        raise GateFailed(
            f"The export failed its parity gate on {report['examples']} examples of {data}: {'; '.join(found)}. "
            "Nothing was exported. If the difference is acceptable, loosen the limit named."
        )
    return parity


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tunesmith")
    except PackageNotFoundError:
        return "unknown"
