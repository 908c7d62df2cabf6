"""Single-text and sentence-pair classification: one label per example, softmax head."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from tunesmith.config import RunConfig
from tunesmith.errors import UserError
from tunesmith.tasks import TASKS, vocabulary
from tunesmith.tasks.sequence import SequenceTask
from tunesmith.train import losses

if TYPE_CHECKING:
    import datasets

AVERAGED = [f"{kind}_{average}" for kind in ("precision", "recall", "f1") for average in ("macro", "micro", "weighted")]


class ClassificationTask(SequenceTask):
    info = TASKS["classification"]
    main_metric = "accuracy"

    def __init__(self, cfg: RunConfig, state: dict[str, Any] | None = None):
        super().__init__(cfg)
        self.names: list[str] = list(state["names"]) if state else []
        # Per-class loss weights, fitted on train (loss.class_weights, or focal's alpha) and saved with the run.
        self.class_weights: list[float] | None = state.get("class_weights") if state else None

    @property
    def metric_names(self) -> list[str]:
        binary = ["f1"] if len(self.names) == 2 else []
        return ["loss", "accuracy", "mcc", *binary, *AVERAGED]

    @property
    def positive(self) -> str:
        """The class whose F1 is `f1` in binary tasks (GLUE's MRPC F1 is that of "1")."""
        wanted = self.cfg.classification.positive_label
        if wanted is None:
            return self.names[-1]
        if wanted not in self.names:
            raise UserError(
                f'classification.positive_label "{wanted}" is not a label (labels: {", ".join(self.names)}).'
            )
        return wanted

    def fit_labels(self, train: datasets.Dataset, source: Path) -> None:
        given = vocabulary.given_names(self.cfg.data)
        if given is not None:
            self.names = given
            for value, line in zip(train["label"], train["line"], strict=True):
                vocabulary.resolve(value, given, source, line, by_index=True)
            self.class_weights = self._fit_weights(train, source)
            return
        vocabulary.refuse_fractions(train["label"], train["line"], source)
        names = {vocabulary.label_name(v, source, line) for v, line in zip(train["label"], train["line"], strict=True)}
        if len(names) < 2:
            raise UserError(
                f"{source}: every training row has the label {next(iter(names))!r}. A classifier needs at "
                "least two labels: check data.label_column, or add examples of the other classes."
            )
        self.names = vocabulary.sorted_names(names)
        self.class_weights = self._fit_weights(train, source)

    def _fit_weights(self, train: datasets.Dataset, source: Path) -> list[float] | None:
        options = self.cfg.loss
        if options.alpha is not None:
            if len(self.names) != 2:
                raise UserError(
                    f"loss.alpha weighs the positive class of a binary task, but there are {len(self.names)} labels. "
                    "Give per-class weights in loss.class_weights instead."
                )
            # Lin et al.'s alpha for the positive class, 1 - alpha for the other.
            positive = self.names.index(self.positive)
            return [options.alpha if index == positive else 1 - options.alpha for index in range(2)]

        def computed() -> list[float]:
            ids = self.encode(train, source)["labels"]
            counts = np.bincount(ids, minlength=len(self.names)).tolist()
            return losses.class_weights(counts, str(options.class_weights), options.beta)

        return losses.resolve_weights(options.class_weights, self.names, computed, "loss.class_weights")

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"names": self.names}
        if self.class_weights is not None:
            state["class_weights"] = self.class_weights
        return state

    def encode(self, split: datasets.Dataset, source: Path) -> datasets.Dataset:
        by_index = self.cfg.data.label_names is not None
        targets = [
            vocabulary.resolve(value, self.names, source, line, by_index)
            for value, line in zip(split["label"], split["line"], strict=True)
        ]
        return split.remove_columns("label").add_column("labels", targets)

    def head_options(self) -> dict[str, Any]:
        return {
            "num_labels": len(self.names),
            "id2label": dict(enumerate(self.names)),
            "label2id": {name: index for index, name in enumerate(self.names)},
        }

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-example losses and, as counts, the weights of their classes (all 1 unweighted), so the
        loop's mean is torch's weighted mean."""
        options = self.cfg.loss
        return losses.single_label(
            logits,
            targets,
            focal=options.resolved(self.info.name) == "focal",
            gamma=options.gamma,
            weight=losses.loop_weights(self.class_weights, logits.device),
            label_smoothing=options.label_smoothing,
        )

    def predictions(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return logits.argmax(dim=-1)

    def example_outputs(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits.float(), dim=-1)

    def example_records(self, outputs: np.ndarray, targets: np.ndarray) -> list[dict[str, Any]]:
        """Gold and predicted label, the predicted one's probability (`confidence`) and the gold one's."""
        records = []
        for probabilities, gold in zip(outputs, targets, strict=True):
            best = int(np.argmax(probabilities))
            records.append(
                {
                    "gold": self.names[int(gold)],
                    "predicted": self.names[best],
                    "confidence": round(float(probabilities[best]), 6),
                    "gold_probability": round(float(probabilities[int(gold)]), 6),
                }
            )
        return records

    def compute_metrics(self, predicted: list[np.ndarray], targets: list[np.ndarray]) -> dict[str, Any]:
        """Accuracy, P/R/F1 (macro, micro, weighted; binary: F1 of the positive class), MCC, report."""
        # Imported on first use: scikit-learn adds 18 MB to every process, training or not.
        from sklearn.metrics import (
            accuracy_score,
            classification_report,
            confusion_matrix,
            f1_score,
            matthews_corrcoef,
            precision_recall_fscore_support,
        )

        y_pred, y_true = np.concatenate(predicted), np.concatenate(targets)
        label_ids = list(range(len(self.names)))
        metrics: dict[str, Any] = {"accuracy": float(accuracy_score(y_true, y_pred))}
        if len(self.names) == 2:
            positive = self.names.index(self.positive)
            metrics["f1"] = float(f1_score(y_true, y_pred, pos_label=positive, average="binary", zero_division=0))
        for average in ("macro", "micro", "weighted"):
            precision, recall, f1, _ = precision_recall_fscore_support(
                y_true, y_pred, labels=label_ids, average=average, zero_division=0
            )
            metrics[f"precision_{average}"] = float(precision)
            metrics[f"recall_{average}"] = float(recall)
            metrics[f"f1_{average}"] = float(f1)
        metrics["mcc"] = float(matthews_corrcoef(y_true, y_pred))
        report = classification_report(
            y_true, y_pred, labels=label_ids, target_names=self.names, output_dict=True, zero_division=0
        )
        metrics["per_class"] = {name: {k: float(v) for k, v in report[name].items()} for name in self.names}
        metrics["confusion_matrix"] = confusion_matrix(y_true, y_pred, labels=label_ids).tolist()
        return metrics

    def result(self, logits: list[float]) -> dict[str, Any]:
        """{label, score, probabilities}."""
        probabilities = torch.softmax(torch.tensor(logits), dim=-1).tolist()
        best = int(np.argmax(probabilities))
        return {
            "label": self.names[best],
            "score": probabilities[best],
            "probabilities": dict(zip(self.names, probabilities, strict=True)),
        }
