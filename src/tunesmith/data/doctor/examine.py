"""Run every check of the doctor over one data set, as `load_splits` read it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tunesmith.config import RunConfig
from tunesmith.data.doctor import labels, lengths, overlap
from tunesmith.data.doctor.examples import SplitExamples, examples_of
from tunesmith.data.doctor.findings import DoctorReport
from tunesmith.tasks import TASKS

if TYPE_CHECKING:
    from tunesmith.data.splits import LoadedData


def examine(
    cfg: RunConfig, loaded: LoadedData, tokenizer: Any = None, label_errors: bool = False, backbone: str | None = None
) -> DoctorReport:
    """Every check over the splits; token lengths when a tokenizer is given; label errors when asked
    (classification only; they embed the texts with `backbone`)."""
    splits = examples_of(cfg, loaded)
    report = DoctorReport(cfg.run_name(), cfg.task, {name: len(split) for name, split in splits.items()})
    train = splits["train"]
    evaluation = [split for name, split in splits.items() if name != "train"]
    for split in splits.values():
        report.add(overlap.duplicates(split))
        report.add(overlap.swapped_pairs(split))
        report.add(labels.short_texts(split, cfg.doctor.min_characters))
    for other in evaluation:
        report.add(overlap.split_overlap(train, other))
        report.add(overlap.swapped_pairs(train, other))
    if "validation" in splits and "test" in splits:
        report.add(overlap.split_overlap(splits["validation"], splits["test"]))
    check_labels(cfg, report, splits)
    if tokenizer is not None:
        check_lengths(cfg, report, splits, tokenizer)
    if label_errors and TASKS[cfg.task].target == "class":
        from tunesmith.data.doctor.label_errors import find_label_errors
        from tunesmith.models.backbones import check_loadable

        findings, measured = find_label_errors(cfg, train, backbone or check_loadable(cfg.model))
        report.add(findings)
        report.statistics["label_errors"] = measured
    return report


def check_labels(cfg: RunConfig, report: DoctorReport, splits: dict[str, SplitExamples]) -> None:
    """Distributions per split; imbalance in train; shift and unseen labels in the evaluation splits."""
    train = splits["train"]
    target = TASKS[cfg.task].target
    scheme = labels.ner_scheme(train, cfg.ner.scheme) if target == "tags" else "iob2"
    counts = {name: labels.distribution(split, target, scheme) for name, split in splits.items()}
    report.statistics["labels"] = counts
    if target == "number":
        return
    report.add(labels.imbalance(train, counts["train"]))
    train_items = labels.label_items(train, target, scheme)
    # Without a given vocabulary, training refuses a label it never saw: an error, not a warning.
    severity = "warning" if cfg.data.label_names is not None else "error"
    for name, split in splits.items():
        if target == "tags":
            report.add(labels.invalid_tags(split, scheme))
        if name == "train":
            continue
        report.add(labels.shift(counts["train"], split, counts[name]))
        report.add(labels.unseen(train_items, split, labels.label_items(split, target, scheme), severity))


def check_lengths(cfg: RunConfig, report: DoctorReport, splits: dict[str, SplitExamples], tokenizer: Any) -> None:
    max_length = cfg.training.max_length
    measured = {}
    for name, split in splits.items():
        found, rows = lengths.token_lengths(split, tokenizer)
        measured[name] = lengths.summary(found, max_length, len(split))
        report.add(lengths.truncated(split, found, rows, max_length))
    report.statistics["token_lengths"] = measured
