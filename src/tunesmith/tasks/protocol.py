"""The one interface every task implements, and what prediction hands between its three steps.

The pipeline asks the task; it never branches on the task's name. A task is built as
`Task(cfg, state)`, where `state` is what `state()` returned after training (None before).
`tests/tasks/test_protocol.py` checks every registered task against this, as
scikit-learn's `check_estimator` checks an estimator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import datasets
    import numpy as np
    import torch
    from transformers import PreTrainedModel

    from tunesmith.tasks import TaskInfo

# Per-batch predictions and targets, as gathered for scoring, from the validation split.
ValidationOutputs = tuple[list["np.ndarray"], list["np.ndarray"]]


@dataclass
class Prepared:
    """Raw texts made into model inputs: `batches[i]` holds the texts `rows[i]` (indices into the
    input list; a row may occur twice, e.g. a pair in both orders), with `extra[i]` whatever the
    task needs to decode that batch (NER: offsets and word ids)."""

    count: int
    batches: list[dict[str, torch.Tensor]] = field(default_factory=list)
    rows: list[list[int]] = field(default_factory=list)
    extra: list[Any] = field(default_factory=list)


@runtime_checkable
class Task(Protocol):
    info: TaskInfo
    # Label names in id order (tags for NER; the target's name for regression).
    names: list[str]
    # The validation metric that picks the best model unless training.metric_for_best says otherwise.
    main_metric: str

    @property
    def metric_names(self) -> list[str]:
        """What `training.metric_for_best` may name."""
        ...

    # --- labels: learnt from train, saved with the run ---
    def fit_labels(self, train: datasets.Dataset, source: Path) -> None: ...

    def state(self) -> dict[str, Any]: ...

    def encode(self, split: datasets.Dataset, source: Path) -> datasets.Dataset:
        """Raw labels to a checked `labels` column of model targets."""
        ...

    # --- data ---
    def tokenize(self, split: datasets.Dataset, tokenizer: Any, training: bool) -> datasets.Dataset:
        """Token ids, aligned targets and a `length` column."""
        ...

    def collator(self, tokenizer: Any) -> Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]]: ...

    # --- model ---
    def check_backbone(self, backbone: str) -> None:
        """Raise UserError before any work if `backbone` cannot serve this task as configured."""
        ...

    def load_model(self, backbone: str) -> PreTrainedModel:
        """The backbone with this task's new head, in float32 even from a half-precision checkpoint."""
        ...

    def load_trained(self, path: Path) -> PreTrainedModel: ...

    def new_trainable_modules(self) -> list[str]:
        """Modules besides the head that the task creates afresh, so that they must train under
        every strategy (a peft method saves them with the adapter)."""
        ...

    def check_trainable(self, model: torch.nn.Module, strategy: str) -> None:
        """Warn when the prepared model leaves frozen what this task needs trained."""
        ...

    # --- training and scoring ---
    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-example loss sums and the counts they sum over; under class weights (train/losses.py) a
        count is the weight of the example's targets, so that sums over counts is the weighted mean."""
        ...

    def predictions(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The small tensor gathered for scoring (never all logits)."""
        ...

    def compute_metrics(self, predicted: list[np.ndarray], targets: list[np.ndarray]) -> dict[str, Any]: ...

    # --- the report's look at single examples (predictions.jsonl) ---
    def example_outputs(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """What the report keeps of each evaluation example, gathered like `predictions`: the same,
        except where a decision alone says too little (classification keeps its class probabilities)."""
        ...

    def example_records(self, outputs: np.ndarray, targets: np.ndarray) -> list[dict[str, Any]]:
        """One JSON-ready record per row of one gathered batch: `gold` and `predicted` in label names
        (or the target's units), plus what the task's report parts read (e.g. `confidence`)."""
        ...

    def after_training(self, validation: Callable[[], ValidationOutputs] | None) -> None:
        """Learn what is fitted on validation outputs once training is over (multi-label
        thresholds); `validation` computes them on demand, None without a validation split."""
        ...

    # --- prediction on raw text: preprocess -> forward -> decode ---
    def preprocess(self, tokenizer: Any, texts: list[str], pairs: list[str] | None, batch_size: int) -> Prepared: ...

    def forward(self, model: PreTrainedModel, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """One batch's outputs on the CPU, as `decode` reads them."""
        ...

    def decode(self, prepared: Prepared, outputs: list[torch.Tensor]) -> list[dict[str, Any]]:
        """One readable result per input text, in input order."""
        ...
