"""Doctor: the data doctor over the splits as read, before the run folder exists.

Findings of the checks in `doctor.fail_on`, and errors, stop the run here, so that nothing is
written; the rest are logged once the run folder is open and saved there as doctor.json and
doctor.md (`tunesmith doctor CONFIG` prints the same without training).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from tunesmith.data.doctor import render
from tunesmith.data.doctor.examine import examine
from tunesmith.data.doctor.findings import DoctorReport, Finding
from tunesmith.errors import UserError

if TYPE_CHECKING:
    from tunesmith.data.splits import LoadedData
    from tunesmith.runs import RunFolder
    from tunesmith.stages.plan import Plan

logger = logging.getLogger(__name__)
DOCTOR_FILES = ("doctor.json", "doctor.md")


def examine_data(plan: Plan, loaded: LoadedData) -> DoctorReport | None:
    """The doctor's report on the data (None with `doctor.enabled` false).

    Raises UserError on a finding that must stop the run: an error, or one of `doctor.fail_on`.
    """
    options = plan.cfg.doctor
    # Its checks are of texts and their labels; a generative task's rows are prompts and answers.
    if not options.enabled or plan.task.info.generative:
        return None
    report = examine(plan.cfg, loaded, plan.tokenizer, options.label_errors, plan.backbone)
    failing = report.failing(list(options.fail_on))
    if failing:
        raise stop_message(failing, loaded, options.fail_on)
    return report


def stop_message(failing: list[Finding], loaded: LoadedData, fail_on: list[str]) -> UserError:
    first = failing[0]
    split = first.split.split("/")[0]
    source = loaded.sources.get(split, "the data")
    why = "an error" if first.severity == "error" else f"doctor.fail_on lists {first.check}"
    more = f" (and {len(failing) - 1} more findings)" if len(failing) > 1 else ""
    return UserError(
        f"{source}: the data doctor stopped the run before anything was written, as {why}: {first.split}: "
        f"{first.message}{more}. Fix the data{' or remove the check from doctor.fail_on' if fail_on else ''}; "
        "`tunesmith doctor CONFIG` lists the examples with their lines."
    )


def save_findings(plan: Plan, run: RunFolder, report: DoctorReport | None) -> None:
    """doctor.json and doctor.md in the run folder; the warnings logged, one line each."""
    if report is None or not plan.writes:
        return
    run.write_text("doctor.json", render.to_json(report))
    run.write_text("doctor.md", render.markdown(report))
    for finding in report.sorted_findings():
        if finding.severity != "info":
            logger.warning("Data doctor, %s: %s.", finding.split, finding.message)
    logger.info("Data doctor: %s See %s.", render.verdict(report), run.path / "doctor.md")
