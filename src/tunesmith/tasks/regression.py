"""Regression (STS-B similarity, ratings): one float target per text or pair, MSE or Huber loss.

Targets may be scaled for training (z-score or min-max); the scaling is saved in
labels.json and undone before metrics and predictions, so every figure is in the
data's own units. A model loaded with plain transformers outputs scaled values.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from tunesmith.config import RunConfig
from tunesmith.errors import UserError, where
from tunesmith.tasks import TASKS
from tunesmith.tasks.sequence import SequenceTask
from tunesmith.train import losses

if TYPE_CHECKING:
    import datasets


class RegressionTask(SequenceTask):
    info = TASKS["regression"]
    main_metric = "pearson"
    metric_names = ["loss", "pearson", "spearman", "mse", "rmse", "mae"]

    def __init__(self, cfg: RunConfig, state: dict[str, Any] | None = None):
        super().__init__(cfg)
        self.options = cfg.regression
        state = state or {}
        self.names: list[str] = list(state.get("names", [cfg.data.label_column]))
        # target = (value - shift) / scale for training; (0, 1) means unscaled.
        self.shift: float = state.get("shift", 0.0)
        self.scale: float = state.get("scale", 1.0)

    def fit_labels(self, train: datasets.Dataset, source: Path) -> None:
        values = np.array(_floats(train, source))
        self.names = [self.cfg.data.label_column or "value"]
        if self.options.target_scaling == "standard":
            self.shift, self.scale = float(values.mean()), float(values.std())
        elif self.options.target_scaling == "minmax":
            self.shift, self.scale = float(values.min()), float(values.max() - values.min())
        if self.scale == 0:
            raise UserError(
                f"{source}: every training target is {values[0]:g}, so there is nothing to learn and "
                "no scale to apply. Check data.label_column."
            )

    def state(self) -> dict[str, Any]:
        return {"names": self.names, "shift": self.shift, "scale": self.scale}

    def encode(self, split: datasets.Dataset, source: Path) -> datasets.Dataset:
        targets = [(value - self.shift) / self.scale for value in _floats(split, source)]
        return split.remove_columns("label").add_column("labels", targets)

    def head_options(self) -> dict[str, Any]:
        return {
            "num_labels": 1,
            "problem_type": "regression",
            "id2label": {0: self.names[0]},
            "label2id": {self.names[0]: 0},
        }

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        options = self.cfg.loss
        per_example = losses.regression(
            logits.squeeze(-1),
            targets,
            huber=options.resolved(self.info.name, self.options.loss) == "huber",
            delta=options.huber_delta or self.options.huber_delta,
        )
        return per_example, torch.ones_like(per_example)

    def predictions(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return logits.float().squeeze(-1)

    def example_outputs(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.predictions(logits, targets)

    def example_records(self, outputs: np.ndarray, targets: np.ndarray) -> list[dict[str, Any]]:
        """Gold and predicted value in the targets' own units."""
        return [
            {"gold": float(gold) * self.scale + self.shift, "predicted": float(value) * self.scale + self.shift}
            for value, gold in zip(outputs, targets, strict=True)
        ]

    def compute_metrics(self, predicted: list[np.ndarray], targets: list[np.ndarray]) -> dict[str, Any]:
        """Pearson, Spearman, MSE, RMSE and MAE, in the targets' own units.

        A correlation is undefined when either side is constant (an untrained model can
        predict one value); it is reported as 0.0, no linear association measured.
        """
        # Imported on first use: scipy.stats adds 22 MB to every process, training or not.
        from scipy.stats import pearsonr, spearmanr

        y_pred = np.concatenate(predicted).astype(np.float64) * self.scale + self.shift
        y_true = np.concatenate(targets).astype(np.float64) * self.scale + self.shift
        error = y_pred - y_true
        constant = np.ptp(y_pred) == 0 or np.ptp(y_true) == 0 or len(y_true) < 2
        mse = float(np.mean(error**2))
        return {
            "pearson": 0.0 if constant else float(pearsonr(y_pred, y_true).statistic),
            "spearman": 0.0 if constant else float(spearmanr(y_pred, y_true).statistic),
            "mse": mse,
            "rmse": math.sqrt(mse),
            "mae": float(np.mean(np.abs(error))),
        }

    def result(self, logits: list[float]) -> dict[str, Any]:
        """{value}, in the targets' units."""
        return {"value": float(logits[0]) * self.scale + self.shift}


def _floats(split: datasets.Dataset, source: Path) -> list[float]:
    values = []
    for raw, line in zip(split["label"], split["line"], strict=True):
        try:
            value = float(raw.strip() if isinstance(raw, str) else raw)
        except (TypeError, ValueError):
            value = None
        if value is None or isinstance(raw, bool) or not math.isfinite(value):
            raise UserError(
                f"{where(source, line)}: target {raw!r} is not a finite number. Regression needs a number "
                "in every row: fix or remove the row (or check data.label_column)."
            )
        values.append(value)
    return values
