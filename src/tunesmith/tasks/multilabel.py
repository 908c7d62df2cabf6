"""Multi-label classification (GoEmotions): any number of labels per example, sigmoid + BCE.

A row's labels are a list (JSON) or one string joined by `multilabel.separator`.
Each label has its own decision threshold: `multilabel.threshold` for all, or, with
`tune_thresholds`, the one that maximises that label's F1 on validation.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from tunesmith.config import RunConfig
from tunesmith.errors import UserError, where
from tunesmith.tasks import TASKS, vocabulary
from tunesmith.tasks.protocol import ValidationOutputs
from tunesmith.tasks.sequence import SequenceTask
from tunesmith.train import losses

if TYPE_CHECKING:
    import datasets

AVERAGES = ("micro", "macro", "weighted", "samples")
# Candidate thresholds when tuning one label on validation.
THRESHOLD_GRID = np.round(np.arange(0.05, 0.96, 0.05), 2)


class MultiLabelTask(SequenceTask):
    info = TASKS["multilabel"]
    main_metric = "f1_macro"
    metric_names = [
        "loss",
        "subset_accuracy",
        "hamming_loss",
        *(f"{kind}_{average}" for kind in ("precision", "recall", "f1") for average in AVERAGES),
    ]

    def __init__(self, cfg: RunConfig, state: dict[str, Any] | None = None):
        super().__init__(cfg)
        self.options = cfg.multilabel
        state = state or {}
        self.names: list[str] = list(state.get("names", []))
        self.thresholds: list[float] = list(state.get("thresholds", []))
        # BCE's weight of each label's positives (loss.pos_weight), fitted on train and saved with the run.
        self.pos_weight: list[float] | None = state.get("pos_weight")

    def fit_labels(self, train: datasets.Dataset, source: Path) -> None:
        given = vocabulary.given_names(self.cfg.data)
        if given is not None:
            self.names = given
        else:
            seen = {
                vocabulary.label_name(item, source, line)
                for value, line in zip(train["label"], train["line"], strict=True)
                for item in self._items(value, source, line)
            }
            if len(seen) < 2:
                raise UserError(
                    f"{source}: only one label ({', '.join(seen)}) occurs in the training data. "
                    "Multi-label classification needs at least two: check data.label_column."
                )
            self.names = vocabulary.sorted_names(seen)
        self.thresholds = [self.options.threshold] * len(self.names)
        self.pos_weight = losses.resolve_weights(
            self.cfg.loss.pos_weight, self.names, lambda: self._positive_weights(train, source), "loss.pos_weight"
        )

    def _positive_weights(self, train: datasets.Dataset, source: Path) -> list[float]:
        encoded = self.encode(train, source)["labels"]
        positives = np.array(encoded, dtype=np.int64).sum(axis=0).tolist()
        return losses.positive_weights(positives, len(encoded))

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"names": self.names, "thresholds": self.thresholds}
        if self.pos_weight is not None:
            state["pos_weight"] = self.pos_weight
        return state

    def encode(self, split: datasets.Dataset, source: Path) -> datasets.Dataset:
        by_index = self.cfg.data.label_names is not None
        targets = []
        for value, line in zip(split["label"], split["line"], strict=True):
            row = [0.0] * len(self.names)
            for item in self._items(value, source, line):
                row[vocabulary.resolve(item, self.names, source, line, by_index)] = 1.0
            targets.append(row)
        return split.remove_columns("label").add_column("labels", targets)

    def _items(self, value: Any, source: Path, line: int) -> list[Any]:
        if isinstance(value, str):
            items = [item.strip() for item in value.split(self.options.separator)]
        elif isinstance(value, list):
            items = [item.strip() if isinstance(item, str) else item for item in value]
        else:
            items = [value]
        if any(item == "" for item in items):
            raise UserError(
                f"{where(source, line)}: an empty label in {value!r}. Separate labels with "
                f'"{self.options.separator}" (multilabel.separator) and leave no empty entries.'
            )
        return items

    def head_options(self) -> dict[str, Any]:
        return {
            "num_labels": len(self.names),
            "problem_type": "multi_label_classification",
            "id2label": dict(enumerate(self.names)),
            "label2id": {name: index for index, name in enumerate(self.names)},
        }

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        options = self.cfg.loss
        pos_weight = None if self.pos_weight is None else torch.tensor(self.pos_weight, device=logits.device)
        per_label = losses.binary(
            logits,
            targets,
            focal=options.resolved(self.info.name) == "focal",
            gamma=options.gamma,
            alpha=options.alpha,
            pos_weight=pos_weight,
        )
        per_example = per_label.mean(dim=-1)
        return per_example, torch.ones_like(per_example)

    def predictions(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        # Probabilities, not decisions: thresholds may still be tuned on them.
        return torch.sigmoid(logits.float())

    def example_outputs(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.predictions(logits, targets)

    def example_records(self, outputs: np.ndarray, targets: np.ndarray) -> list[dict[str, Any]]:
        """Gold and predicted label sets (the tuned thresholds decide), and each label's probability."""
        decided = self.decide(outputs)
        return [
            {
                "gold": [name for name, on in zip(self.names, gold, strict=True) if on],
                "predicted": [name for name, on in zip(self.names, row, strict=True) if on],
                "probabilities": {name: round(float(p), 6) for name, p in zip(self.names, probabilities, strict=True)},
            }
            for probabilities, row, gold in zip(outputs, decided, targets, strict=True)
        ]

    def decide(self, probabilities: np.ndarray) -> np.ndarray:
        return (probabilities >= np.array(self.thresholds)).astype(int)

    def compute_metrics(self, predicted: list[np.ndarray], targets: list[np.ndarray]) -> dict[str, Any]:
        """Micro/macro/weighted/per-sample P/R/F1, subset accuracy, Hamming loss, per-label report."""
        # Imported on first use: scikit-learn adds 18 MB to every process, training or not.
        from sklearn.metrics import accuracy_score, classification_report, hamming_loss, precision_recall_fscore_support

        y_pred = self.decide(np.concatenate(predicted))
        y_true = np.concatenate(targets).astype(int)
        metrics: dict[str, Any] = {
            "subset_accuracy": float(accuracy_score(y_true, y_pred)),
            "hamming_loss": float(hamming_loss(y_true, y_pred)),
        }
        for average in AVERAGES:
            precision, recall, f1, _ = precision_recall_fscore_support(y_true, y_pred, average=average, zero_division=0)
            metrics[f"precision_{average}"] = float(precision)
            metrics[f"recall_{average}"] = float(recall)
            metrics[f"f1_{average}"] = float(f1)
        report = classification_report(y_true, y_pred, target_names=self.names, output_dict=True, zero_division=0)
        metrics["per_class"] = {name: {k: float(v) for k, v in report[name].items()} for name in self.names}
        metrics["thresholds"] = dict(zip(self.names, self.thresholds, strict=True))
        return metrics

    def after_training(self, validation: Callable[[], ValidationOutputs] | None) -> None:
        if self.options.tune_thresholds and validation is not None:
            self.tune_thresholds(*validation())

    def tune_thresholds(self, predicted: list[np.ndarray], targets: list[np.ndarray]) -> None:
        """Each label's threshold maximises its F1 on these (validation) predictions.

        A label without positive examples here keeps the default; ties go to the
        threshold nearest the default, the least surprising choice.
        """
        from sklearn.metrics import f1_score

        probabilities, y_true = np.concatenate(predicted), np.concatenate(targets).astype(int)
        default = self.options.threshold
        tuned = []
        for label in range(len(self.names)):
            if y_true[:, label].sum() == 0:
                tuned.append(default)
                continue
            scores = [f1_score(y_true[:, label], probabilities[:, label] >= t, zero_division=0) for t in THRESHOLD_GRID]
            best = max(scores)
            candidates = [t for t, s in zip(THRESHOLD_GRID, scores, strict=True) if s == best]
            tuned.append(float(min(candidates, key=lambda t: abs(t - default))))
        self.thresholds = tuned

    def result(self, logits: list[float]) -> dict[str, Any]:
        """{labels, probabilities}; `labels` are those at or above their threshold."""
        probabilities = torch.sigmoid(torch.tensor(logits)).numpy()
        decided = self.decide(probabilities)
        return {
            "labels": [name for name, on in zip(self.names, decided, strict=True) if on],
            "probabilities": dict(zip(self.names, map(float, probabilities), strict=True)),
        }
