"""Every registered task passes the same checks, as scikit-learn's `check_estimator` checks an
estimator: the protocol's methods, labels learnt and restored, tokenized batches the model
takes, a loss per example, metrics that name the main one, and predictions in input order
from preprocess -> forward -> decode, the same after the task is rebuilt from its state.

A new task must add a data writer to DATA, or `test_every_registered_task_is_checked` fails.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from tests.causal.conftest import prompt_completion_rows, write_jsonl
from tests.conftest import (
    ner_sentences,
    write_conll,
    write_multilabel_csv,
    write_regression_csv,
    write_sentiment_csv,
)
from tunesmith.config import RunConfig
from tunesmith.data.splits import load_splits
from tunesmith.tasks import TASKS, get_task, reading_options
from tunesmith.tasks.protocol import Prepared, Task

# Each task: a writer of a small training file, and the config keys that read it.
DATA: dict[str, tuple[Callable[[Path], Path], dict]] = {
    "classification": (lambda folder: write_sentiment_csv(folder / "train.csv", rows_per_label=12), {}),
    "regression": (lambda folder: write_regression_csv(folder / "train.csv", rows=24), {"label_column": "score"}),
    "multilabel": (lambda folder: write_multilabel_csv(folder / "train.csv", rows=24), {"label_column": "topics"}),
    "ner": (lambda folder: write_conll(folder / "train.conll", ner_sentences(24)), {}),
    "causal": (lambda folder: write_jsonl(folder / "train.jsonl", prompt_completion_rows(40)), {}),
}
# The model each task fine-tunes: an encoder, or a decoder for the generative task.
MODELS = {"causal": "tiny_gpt2"}


def test_every_registered_task_is_checked() -> None:
    assert set(DATA) == set(TASKS)


@pytest.fixture(params=sorted(TASKS))
def fitted(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[RunConfig, Task, dict]:
    name = request.param
    write, columns = DATA[name]
    train = write(tmp_path)
    model = request.getfixturevalue(MODELS.get(name, "tiny_model"))
    cfg = RunConfig.model_validate(
        {"task": name, "model": model, "data": {"train": str(train), **columns}, "training": {"max_length": 32}}
    )
    task = get_task(cfg)
    data = load_splits(cfg.data, cfg.training.seed, **reading_options(cfg))
    task.fit_labels(data.splits["train"], data.sources["train"])
    encoded = {split: task.encode(rows, data.sources[split]) for split, rows in data.splits.items()}
    return cfg, task, encoded


def test_the_task_has_the_protocols_methods_and_its_registry_entry(fitted) -> None:
    cfg, task, _ = fitted
    assert isinstance(task, Task)
    assert task.info is TASKS[cfg.task]
    assert task.main_metric in task.metric_names and "loss" in task.metric_names
    assert len(task.names) >= 1 or task.info.generative  # a generative task has no label names


def test_state_restores_the_labels(fitted) -> None:
    cfg, task, _ = fitted
    restored = get_task(cfg, task.state())
    assert restored.names == task.names and restored.state() == task.state()


def test_tokenized_batches_train_and_score(fitted) -> None:
    cfg, task, encoded = fitted
    tokenizer = AutoTokenizer.from_pretrained(cfg.model)
    tokenized = task.tokenize(encoded["train"], tokenizer, True)
    # Packed rows (a generative task's) give positions instead of an attention mask.
    assert {"input_ids", "labels", "length"} <= set(tokenized.column_names)
    assert {"attention_mask", "position_ids"} & set(tokenized.column_names)
    assert all(length <= cfg.training.max_length for length in tokenized["length"])
    inputs = {"input_ids", "attention_mask", "position_ids", "labels"}
    count = min(6, len(tokenized))
    rows = [{k: v for k, v in tokenized[i].items() if k in inputs} for i in range(count)]
    batch = task.collator(tokenizer)(rows)
    labels = batch.pop("labels")
    model = task.load_model(cfg.model).eval()
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    with torch.no_grad():
        logits = model(**batch).logits
    sums, counts = task.loss(logits, labels)
    assert sums.shape == counts.shape == (count,) and bool((counts > 0).all())
    assert torch.isfinite(sums).all()
    predicted = task.predictions(logits, labels)
    metrics = task.compute_metrics([predicted.numpy()], [labels.numpy()])
    assert set(task.metric_names) - {"loss"} <= set(metrics)
    assert all(np.isfinite(metrics[name]) for name in task.metric_names if name != "loss")
    # One record per example for the report, in the task's own terms.
    records = task.example_records(task.example_outputs(logits, labels).numpy(), labels.numpy())
    # A generative task's gold and prediction are texts, scored by generating once training is over: each
    # example's record is its loss.
    kept = {"loss", "target_tokens"} if task.info.generative else {"gold", "predicted"}
    assert len(records) == count and all(kept <= set(record) for record in records)
    decided = task.compute_metrics([predicted.numpy()], [labels.numpy()])
    if task.info.target == "class":
        assert all(0.5 / len(task.names) < r["confidence"] <= 1 and r["predicted"] in task.names for r in records)
        assert [r["predicted"] for r in records] == [task.names[i] for i in predicted.tolist()]
        assert decided["accuracy"] == sum(r["gold"] == r["predicted"] for r in records) / count
    if task.info.target == "tags":
        assert [len(r["gold"]) for r in records] == [int((row != -100).sum()) for row in labels]


def test_predictions_come_in_input_order_and_survive_a_rebuild(fitted) -> None:
    cfg, task, encoded = fitted
    tokenizer = AutoTokenizer.from_pretrained(cfg.model)
    task.tokenize(encoded["train"].select(range(4)), tokenizer, True)  # a generative task prepares the tokenizer
    model = task.load_model(cfg.model).eval()
    texts = ["john smith visited paris today", "golf", "a wonderful and lovely evening with friends", "rome"]

    def predict(task: Task, texts: list[str]) -> list[dict]:
        prepared = task.preprocess(tokenizer, texts, None, batch_size=3)
        assert isinstance(prepared, Prepared) and prepared.count == len(texts)
        return task.decode(prepared, [task.forward(model, batch) for batch in prepared.batches])

    results = predict(task, texts)
    assert len(results) == len(texts) and all(isinstance(result, dict) and result for result in results)
    # One at a time, or in reverse order, each text gets the same result.
    for text, result in zip(texts, results, strict=True):
        assert _same(predict(task, [text])[0], result)
    assert _same(predict(task, texts[::-1]), results[::-1])
    assert _same(predict(get_task(cfg, task.state()), texts), results)
    assert predict(task, []) == []


def _same(a, b) -> bool:
    """Equal, floats to 1e-4: batches padded differently differ in float rounding."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, abs_tol=1e-4)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[key], b[key]) for key in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b
