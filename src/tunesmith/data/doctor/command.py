"""`tunesmith doctor CONFIG`: the doctor over a config's data, without training."""

from __future__ import annotations

from pathlib import Path

from tunesmith.config import RunConfig
from tunesmith.data.doctor import render
from tunesmith.data.doctor.examine import examine
from tunesmith.data.doctor.findings import DoctorReport

DOCTOR_FILES = ("doctor.json", "doctor.md")


def diagnose(cfg: RunConfig, label_errors: bool) -> DoctorReport:
    """Read the data as `train` would (same carving, same max_length) and examine it."""
    from tunesmith.data.splits import load_splits
    from tunesmith.errors import UserError
    from tunesmith.models.backbones import check_loadable, load_tokenizer
    from tunesmith.stages.plan import fit_max_length
    from tunesmith.tasks import TASKS, reading_options

    if TASKS[cfg.task].generative:
        raise UserError(
            "The data doctor examines texts and their labels; task causal's rows are prompts and answers. "
            "`tunesmith inspect CONFIG` shows how they are encoded and what is learnt."
        )
    backbone = check_loadable(cfg.model)
    cfg = fit_max_length(cfg, backbone)
    loaded = load_splits(cfg.data, cfg.training.seed, **reading_options(cfg))
    return examine(cfg, loaded, load_tokenizer(backbone), label_errors, backbone)


def check_folder(folder: Path) -> None:
    """Refuse, before any work, a folder holding anything but an earlier doctor's two files."""
    from tunesmith.runs import check_output_folder

    check_output_folder(folder, DOCTOR_FILES, lambda name: False, "doctor")


def write_report(folder: Path, report: DoctorReport) -> None:
    from tunesmith.runs import write_atomic

    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / "doctor.json", render.to_json(report))
    write_atomic(folder / "doctor.md", render.markdown(report))
