"""The tasks: one module each, behind one protocol (protocol.py) and the registry here.

The registry says what the pipeline needs to know of a task before its module (and torch)
is imported: whether it labels tokens or whole texts, the peft task type, its default
columns, how a report names its classes. `get_task` builds the task object itself.
Adding a task: a module with a class that satisfies `protocol.Task`, an entry in `TASKS`,
and a data writer in tests/tasks/test_protocol.py, whose conformance test every task passes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tunesmith.config import RunConfig
    from tunesmith.tasks.protocol import Task


@dataclass(frozen=True)
class TaskInfo:
    name: str
    # "module:Class" of the implementation, imported on first use.
    implementation: str
    # One label per token (reads token lists and tag lists; no sentence pairs) or per text.
    token_level: bool
    # peft's TaskType name for the model this task trains.
    peft_task_type: str
    # What a report calls a row of the per-class table, and the labels in its summary line.
    class_noun: str = "label"
    labels_summary: str = "{count} labels"
    # Columns read unless the config names others.
    default_columns: dict[str, str] = field(default_factory=dict)
    # What one example's target is: a "class", a "number", a "label set", per-token "tags", or the "text"
    # to generate (the data doctor reads and compares labels by it).
    target: str = "class"
    # Generates text (a causal LM): rows are prompts and completions or chats, not texts with labels;
    # scored by generating too.
    generative: bool = False
    # What `loss.name` may choose (config section `loss:`, train/losses.py); the first is the default.
    # Empty: the task brings its own loss and takes no loss options.
    losses: tuple[str, ...] = ()


TASKS: dict[str, TaskInfo] = {
    info.name: info
    for info in [
        TaskInfo(
            "classification",
            "tunesmith.tasks.classification:ClassificationTask",
            False,
            "SEQ_CLS",
            losses=("cross_entropy", "focal"),
        ),
        TaskInfo(
            "regression",
            "tunesmith.tasks.regression:RegressionTask",
            False,
            "SEQ_CLS",
            labels_summary="a regression target",
            target="number",
            losses=("mse", "huber"),
        ),
        TaskInfo(
            "multilabel",
            "tunesmith.tasks.multilabel:MultiLabelTask",
            False,
            "SEQ_CLS",
            target="label set",
            losses=("bce", "focal"),
        ),
        TaskInfo(
            "ner",
            "tunesmith.tasks.ner:NerTask",
            True,
            "TOKEN_CLS",
            class_noun="entity type",
            labels_summary="{count} tags",
            default_columns={"text_column": "tokens", "label_column": "tags"},
            target="tags",
            losses=("cross_entropy", "focal"),
        ),
        TaskInfo(
            "causal",
            "tunesmith.tasks.causal:CausalTask",
            False,
            "CAUSAL_LM",
            class_noun="example",
            labels_summary="generated text",
            default_columns={"text_column": "prompt", "label_column": "completion"},
            target="text",
            generative=True,
        ),
    ]
}
TASK_NAMES = tuple(TASKS)


def task_info(name: str) -> TaskInfo:
    return TASKS[name]


def get_task(cfg: RunConfig, state: dict[str, Any] | None = None) -> Task:
    """The configured task, with its label state restored when `state` is given."""
    module, name = TASKS[cfg.task].implementation.split(":")
    return getattr(import_module(module), name)(cfg, state)


def reading_options(cfg: RunConfig) -> dict[str, Any]:
    """How the data readers read this task's files: token lists, and (NER) neighbouring words; a generative
    task's rows are prompts and completions, chats or texts (causal/rows.py)."""
    info = TASKS[cfg.task]
    if info.generative:
        from tunesmith.causal.rows import select_rows

        return {"select": lambda table: select_rows(table, cfg)}
    return {"token_level": info.token_level, "context_words": cfg.ner.context_words if info.token_level else 0}
