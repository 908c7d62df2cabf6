"""One module per task, each with the same functions:

- `label_names(train, source)`: the label vocabulary, from the training split;
- `encode_labels(split, names, source)`: raw labels to model targets, checked;
- `load_model(backbone, names)`: backbone plus a new task head;
- `load_trained(path)`: a fine-tuned model saved by a run;
- `loss(logits, targets)`: the training loss, one value per example;
- `predictions(logits)`: what gets gathered and scored (argmax, before gathering);
- `compute_metrics(predictions, targets, names)`: the task's metrics;
- `decode(logits, names)`: human-readable predictions for `predict`;
- `METRIC_NAMES`: the scalar metrics that can pick the best model.
"""

from __future__ import annotations

from types import ModuleType

from tunesmith.tasks import classification

TASKS: dict[str, ModuleType] = {"classification": classification}


def get_task(name: str) -> ModuleType:
    return TASKS[name]
