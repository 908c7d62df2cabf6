"""Track the best validation score and decide when to stop."""

from __future__ import annotations

from dataclasses import dataclass

# Metrics where lower is better; every other metric is higher-is-better.
LOWER_IS_BETTER = {"loss", "perplexity", "mse", "rmse", "mae", "hamming_loss"}


@dataclass
class EarlyStopping:
    metric: str
    # None: never stop early, only remember the best evaluation.
    patience: int | None = None
    best: float | None = None
    best_loss: float | None = None
    best_step: int | None = None
    evaluations_without_improvement: int = 0

    @property
    def greater_is_better(self) -> bool:
        return self.metric not in LOWER_IS_BETTER

    def update(self, metrics: dict[str, float], step: int) -> bool:
        """Record one evaluation; True when it is the best so far.

        Ties on the metric (common on small validation sets, e.g. accuracy 1.0 twice)
        go to the lower validation loss, so the better-calibrated model is kept.
        """
        value, loss = metrics[self.metric], metrics.get("loss")
        if self.best is None:
            improved = True
        elif value == self.best:
            improved = loss is not None and self.best_loss is not None and loss < self.best_loss
        else:
            improved = value > self.best if self.greater_is_better else value < self.best
        if improved:
            self.best, self.best_loss, self.best_step = value, loss, step
            self.evaluations_without_improvement = 0
        else:
            self.evaluations_without_improvement += 1
        return improved

    @property
    def should_stop(self) -> bool:
        return self.patience is not None and self.evaluations_without_improvement >= self.patience
