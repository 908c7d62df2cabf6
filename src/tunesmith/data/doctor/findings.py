"""What the data doctor reports: findings (problems, each with a count and examples) and statistics."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning", "info"]
# Most severe first: the order of the printed table.
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")
# How many examples a finding keeps: enough to look at, not a copy of the data.
EXAMPLES_KEPT = 5

# Every check the doctor runs, as named in doctor.json and in `doctor.fail_on`.
CHECKS = (
    "duplicates",
    "conflicting_labels",
    "split_overlap",
    "near_duplicate_overlap",
    "swapped_pairs",
    "short_texts",
    "class_imbalance",
    "label_shift",
    "unseen_labels",
    "truncated",
    "invalid_tags",
    "label_errors",
)


@dataclass
class Finding:
    """One kind of problem in one split (or pair of splits), counted, with a few examples."""

    check: str
    severity: Severity
    split: str
    count: int
    message: str
    examples: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class DoctorReport:
    """Everything the doctor found, and what it measured, for doctor.json and doctor.md."""

    name: str
    task: str
    rows: dict[str, int]
    findings: list[Finding] = field(default_factory=list)
    # Per split: label distribution, token lengths; per check that measured something (label errors).
    statistics: dict[str, Any] = field(default_factory=dict)

    def add(self, findings: list[Finding]) -> None:
        self.findings.extend(findings)

    def sorted_findings(self) -> list[Finding]:
        return sorted(self.findings, key=lambda f: (SEVERITIES.index(f.severity), f.check, f.split))

    def failing(self, checks: list[str]) -> list[Finding]:
        """The findings of `checks` (doctor.fail_on) and every error: what stops a run."""
        return [f for f in self.findings if f.count and (f.severity == "error" or f.check in checks)]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "task": self.task,
            "rows": self.rows,
            "findings": [asdict(finding) for finding in self.sorted_findings()],
            "statistics": self.statistics,
        }


def example(split: str, line: int, text: str, **extra: Any) -> dict[str, Any]:
    """One example of a finding: where it is and what it says, the text cut to a readable length."""
    return {"split": split, "line": line, "text": shorten(text), **extra}


def shorten(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """ "1 input", "2,000 inputs": a count with its noun in the right number."""
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"


def agree(count: int, noun: str, verb: str, plural: str | None = None, verbs: str | None = None) -> str:
    """A count, its noun and the verb that goes with them: "1 input occurs", "2 inputs occur".

    `verb` is the singular form (a plain -s is dropped for the plural unless `verbs` is given).
    """
    many = verbs or (verb[:-1] if verb.endswith("s") else verb)
    return f"{counted(count, noun, plural)} {verb if count == 1 else many}"
