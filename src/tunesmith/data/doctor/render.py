"""The doctor's report for people (a terminal table, doctor.md) and for programs (doctor.json)."""

from __future__ import annotations

import json
import textwrap
from typing import Any

from tunesmith.data.doctor.findings import DoctorReport, Finding

# Label shares listed per split; the rest are summed up.
LABELS_SHOWN = 8


def summary_line(report: DoctorReport) -> str:
    rows = " · ".join(f"{name} {count:,}" for name, count in report.rows.items())
    return f"Data doctor: {report.name} ({report.task}; rows: {rows})"


def verdict(report: DoctorReport) -> str:
    counts = {severity: 0 for severity in ("error", "warning", "info")}
    for finding in report.findings:
        counts[finding.severity] += 1
    if not report.findings:
        return "No problems found."
    return ", ".join(f"{count} {name}{'s' if count != 1 else ''}" for name, count in counts.items() if count) + "."


def table(report: DoctorReport, width: int = 120) -> str:
    """The findings as a fixed-width table, most severe first, each message wrapped under its row."""
    findings = report.sorted_findings()
    lines = [summary_line(report), ""]
    if not findings:
        return "\n".join([*lines, verdict(report)])
    check_width = max(len(f.check) for f in findings)
    split_width = max(len("split"), *(len(f.split) for f in findings))
    head = f"{'severity':<8}  {'check':<{check_width}}  {'split':<{split_width}}  {'count':>7}  finding"
    lines += [head, "-" * min(width, len(head) + 40)]
    indent = 8 + check_width + split_width + 7 + 8
    for finding in findings:
        wrapped = textwrap.wrap(finding.message, max(40, width - indent)) or [""]
        lines.append(
            f"{finding.severity:<8}  {finding.check:<{check_width}}  {finding.split:<{split_width}}  "
            f"{finding.count:>7,}  {wrapped[0]}"
        )
        lines += [" " * indent + rest for rest in wrapped[1:]]
    lines += ["", verdict(report)]
    return "\n".join(lines)


def to_json(report: DoctorReport) -> str:
    return json.dumps(report.to_json(), indent=2, ensure_ascii=False, default=str) + "\n"


def markdown(report: DoctorReport) -> str:
    parts = [f"# {summary_line(report)}", "", verdict(report), ""]
    findings = report.sorted_findings()
    if findings:
        parts += ["| severity | check | split | count | finding |", "|---|---|---|---:|---|"]
        parts += [f"| {f.severity} | {f.check} | {f.split} | {f.count:,} | {_cell(f.message)} |" for f in findings]
    for finding in findings:
        if finding.examples:
            parts += ["", f"## {finding.check} ({finding.split})", "", *_examples(finding)]
    parts += _statistics(report.statistics)
    return "\n".join(parts) + "\n"


def _examples(finding: Finding) -> list[str]:
    # Examples of one finding may differ in their fields (a near duplicate shows the other text too).
    fixed = {"split", "text", "line"}
    keys = list(dict.fromkeys(key for shown in finding.examples for key in shown if key not in fixed))
    rows = ["| line | text | " + " | ".join(keys) + " |", "|---|---|" + "---|" * len(keys)]
    for shown in finding.examples:
        values = [_cell(_value(shown.get(k))) for k in keys]
        rows.append(f"| {shown.get('line')} | {_cell(shown.get('text', ''))} | " + " | ".join(values) + " |")
    return rows


def _statistics(statistics: dict[str, Any]) -> list[str]:
    parts: list[str] = []
    if statistics.get("labels"):
        parts += ["", "## Labels per split", ""]
        for split, counts in statistics["labels"].items():
            parts.append(f"- {split}: {_distribution(counts)}")
    if statistics.get("token_lengths"):
        parts += ["", "## Token lengths", "", "| split | mean | p50 | p95 | p99 | max | max_length | cut |"]
        parts.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        for split, s in statistics["token_lengths"].items():
            if s:
                parts.append(
                    f"| {split} | {s['mean']} | {s['p50']} | {s['p95']} | {s['p99']} | {s['max']} | "
                    f"{s['max_length']} | {s['cut']:,} ({100 * s['cut_share']:.1f}%) |"
                )
    if statistics.get("label_errors"):
        parts += ["", "## Label errors: how they were looked for", ""]
        parts += [f"- {key}: {_value(value)}" for key, value in statistics["label_errors"].items()]
    return parts


def _distribution(counts: dict[str, Any]) -> str:
    if not counts:
        return "(none)"
    if "mean" in counts and "std" in counts:  # a regression target's summary
        return ", ".join(f"{key} {value}" for key, value in counts.items())
    total = sum(counts.values())
    shown = [f"{name} {count:,} ({100 * count / total:.1f}%)" for name, count in list(counts.items())[:LABELS_SHOWN]]
    rest = len(counts) - LABELS_SHOWN
    return ", ".join(shown) + (f", and {rest} more labels" if rest > 0 else "")


def _value(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("\r", " ")
