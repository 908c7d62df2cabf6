"""Small made-up data sets for the doctor's tests: a clean one, and ways to plant each problem."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from tunesmith.config import RunConfig
from tunesmith.data.doctor.examine import examine
from tunesmith.data.doctor.findings import DoctorReport
from tunesmith.data.splits import load_splits
from tunesmith.tasks import reading_options

SUBJECTS = ["the film", "this novel", "our hotel", "the concert", "that restaurant", "the new phone", "my flight"]
VERBS = ["was", "felt", "seemed", "turned out", "looked"]
GOOD = ["wonderful", "delightful", "superb", "charming", "excellent"]
BAD = ["awful", "dreadful", "tedious", "terrible", "dismal"]


def clean_rows(count: int, offset: int = 0) -> list[tuple[str, str]]:
    """Distinct, balanced, ordinary sentences: nothing for the doctor to find."""
    rows = []
    for index in range(offset, offset + count):
        words = GOOD if index % 2 else BAD
        subject, verb = SUBJECTS[index % len(SUBJECTS)], VERBS[(index // 2) % len(VERBS)]
        rows.append(
            (
                f"{subject} {verb} {words[index % len(words)]}, said reviewer number {index}",
                "pos" if index % 2 else "neg",
            )
        )
    return rows


def write_csv(path: Path, rows: list[tuple[str, ...]], header: tuple[str, ...] = ("text", "label")) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def config(**settings: Any) -> RunConfig:
    return RunConfig.model_validate({"name": "planted", **settings})


def doctor(cfg: RunConfig, tokenizer: Any = None) -> DoctorReport:
    loaded = load_splits(cfg.data, cfg.training.seed, **reading_options(cfg))
    return examine(cfg, loaded, tokenizer)


def checks(report: DoctorReport) -> dict[tuple[str, str], int]:
    """{(check, split): count} of every finding."""
    return {(finding.check, finding.split): finding.count for finding in report.findings}
