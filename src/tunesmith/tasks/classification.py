"""Single-text classification (and sentence pairs): labels, head, metrics, decoding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
from sklearn.metrics import (
    accuracy_score,
    classification_report,
    confusion_matrix,
    matthews_corrcoef,
    precision_recall_fscore_support,
)
from transformers import AutoModelForSequenceClassification, PreTrainedModel

from tunesmith.errors import UserError, where

# Scalar metrics that `training.metric_for_best` may name.
METRIC_NAMES = ["loss", "accuracy", "mcc"] + [
    f"{kind}_{average}" for kind in ("precision", "recall", "f1") for average in ("macro", "micro", "weighted")
]


def label_name(value: Any, source: Path, line: int) -> str:
    """Canonical name of a raw label: strings stripped, integral numbers as integers."""
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, float):
        if not value.is_integer():
            raise UserError(
                f"{where(source, line)}: label {value!r} is a fraction. Classification labels are "
                "names or whole numbers; a numeric target needs a regression task."
            )
        value = int(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, str):
        return value.strip()
    raise UserError(
        f"{where(source, line)}: label {value!r} is a {type(value).__name__}; use a name or a whole number."
    )


def label_names(train: datasets.Dataset, source: Path) -> list[str]:
    """Sorted label vocabulary: numerically when every label is an integer, else by name."""
    names = {label_name(value, source, line) for value, line in zip(train["label"], train["line"], strict=True)}
    if len(names) < 2:
        only = next(iter(names))
        raise UserError(
            f"{source}: every training row has the label {only!r}. A classifier needs at least two "
            "labels: check data.label_column, or add examples of the other classes."
        )
    if all(_is_integer(name) for name in names):
        return sorted(names, key=int)
    return sorted(names)


def _is_integer(name: str) -> bool:
    return name.lstrip("-").isdigit()


def encode_labels(split: datasets.Dataset, names: list[str], source: Path) -> datasets.Dataset:
    """Replace raw labels with class ids; a label unknown to training is an error."""
    ids = {name: index for index, name in enumerate(names)}
    targets = []
    for value, line in zip(split["label"], split["line"], strict=True):
        name = label_name(value, source, line)
        if name not in ids:
            shown = ", ".join(names[:20]) + (" ..." if len(names) > 20 else "")
            raise UserError(
                f"{where(source, line)}: label {name!r} never appears in the training data "
                f"(training labels: {shown}). Fix the label, or add training examples for it."
            )
        targets.append(ids[name])
    return split.remove_columns("label").add_column("labels", targets)


def load_model(backbone: str, names: list[str]) -> PreTrainedModel:
    return AutoModelForSequenceClassification.from_pretrained(
        backbone,
        num_labels=len(names),
        id2label=dict(enumerate(names)),
        label2id={name: index for index, name in enumerate(names)},
    )


def load_trained(path: Path) -> PreTrainedModel:
    return AutoModelForSequenceClassification.from_pretrained(path)


def loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy per example (the loop averages it)."""
    return torch.nn.functional.cross_entropy(logits.float(), targets, reduction="none")


def predictions(logits: torch.Tensor) -> torch.Tensor:
    return logits.argmax(dim=-1)


def compute_metrics(predicted: np.ndarray, targets: np.ndarray, names: list[str]) -> dict[str, Any]:
    """Accuracy, P/R/F1 (macro, micro, weighted), MCC, per-class report, confusion matrix."""
    label_ids = list(range(len(names)))
    metrics: dict[str, Any] = {"accuracy": float(accuracy_score(targets, predicted))}
    for average in ("macro", "micro", "weighted"):
        precision, recall, f1, _ = precision_recall_fscore_support(
            targets, predicted, labels=label_ids, average=average, zero_division=0
        )
        metrics[f"precision_{average}"] = float(precision)
        metrics[f"recall_{average}"] = float(recall)
        metrics[f"f1_{average}"] = float(f1)
    metrics["mcc"] = float(matthews_corrcoef(targets, predicted))
    report = classification_report(
        targets, predicted, labels=label_ids, target_names=names, output_dict=True, zero_division=0
    )
    metrics["per_class"] = {name: {key: float(value) for key, value in report[name].items()} for name in names}
    metrics["confusion_matrix"] = confusion_matrix(targets, predicted, labels=label_ids).tolist()
    return metrics


def decode(logits: torch.Tensor, names: list[str]) -> list[dict[str, Any]]:
    """One {label, score, probabilities} per row of logits."""
    probabilities = torch.softmax(logits.float(), dim=-1).tolist()
    results = []
    for row in probabilities:
        best = int(np.argmax(row))
        results.append(
            {
                "label": names[best],
                "score": row[best],
                "probabilities": dict(zip(names, row, strict=True)),
            }
        )
    return results
