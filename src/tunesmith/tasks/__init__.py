"""One module per task. Each defines a task class with the same small interface:

- `fit_labels(train, source)`: learn the label vocabulary (and target scaling) from train;
- `state()`: what `fit_labels` learnt, saved as labels.json; `Task(cfg, state)` restores it;
- `encode(split, source)`: raw labels to a checked `labels` column of model targets;
- `tokenize(split, tokenizer, training)`: token ids, aligned targets, and a `length` column;
- `collator(tokenizer)`: pads a batch (inputs and, for token tasks, targets);
- `load_model(backbone)` / `load_trained(path)`: a Hugging Face model with the task's head;
  `load_model` loads fp32 weights even from a half-precision checkpoint, because transformers
  would keep its dtype and AdamW steps are lost to rounding in half precision;
- `loss(logits, targets)`: per-example loss sums and the counts they sum over, so that
  token tasks average over tokens and evaluation can average exactly across processes;
- `predictions(logits, targets)`: the small tensor gathered for scoring (never all logits);
- `compute_metrics(predicted, targets)`: lists of per-batch arrays in, the task's metrics out;
- `predict(model, tokenizer, texts, pairs, batch_size)`: readable results for raw texts;
- `metric_names` (what `training.metric_for_best` may name) and `main_metric`.

The classes share an interface, not a base class: each reads top to bottom on its own.
"""

from __future__ import annotations

from typing import Any

from tunesmith.config import RunConfig
from tunesmith.tasks.classification import ClassificationTask
from tunesmith.tasks.multilabel import MultiLabelTask
from tunesmith.tasks.ner import NerTask
from tunesmith.tasks.regression import RegressionTask

TASKS = {
    "classification": ClassificationTask,
    "regression": RegressionTask,
    "multilabel": MultiLabelTask,
    "ner": NerTask,
}


def get_task(cfg: RunConfig, state: dict[str, Any] | None = None) -> Any:
    """The configured task, with its label state restored when `state` is given."""
    return TASKS[cfg.task](cfg, state)
