"""Gradient accumulation steps on the mean over the whole accumulated batch: 4 micro-batches of 8 give the
gradient of one batch of 32, however their loss tokens are shared out."""

from __future__ import annotations

import tempfile
from pathlib import Path

import datasets
import torch
from accelerate.utils import set_seed

from tunesmith.config import RunConfig
from tunesmith.models.backbones import load_tokenizer
from tunesmith.strategies import Strategy, get_strategy
from tunesmith.tasks import get_task
from tunesmith.train.accelerator import make_accelerator
from tunesmith.train.loop import Session, fit


def causal_examples(tiny_gpt2: str) -> tuple:
    cfg = RunConfig.model_validate(
        {"task": "causal", "model": tiny_gpt2, "data": {"train": "unused.jsonl"}, "causal": {"packing": False},
         "training": {"max_length": 64}}
    )  # fmt: skip
    # Completions of 1 to 90 words.
    words = ["the", "cat", "sat", "on", "a", "mat", "and", "ran", "far", "away", "to", "see", "big", "red", "sun"]
    rows = {"prompt": [f"{words[i % 15]} {words[(3 * i) % 15]}" for i in range(32)],
            "completion": [" " + " ".join(words[: 1 + (i * 7) % 15] * (1 + i % 6)) for i in range(32)],
            "line": list(range(1, 33))}  # fmt: skip
    task = get_task(cfg)
    split = datasets.Dataset.from_dict(rows)
    task.fit_labels(split, Path("unused.jsonl"))
    tokenizer = load_tokenizer(tiny_gpt2)
    return cfg, task, tokenizer, task.tokenize(split, tokenizer, True)


def first_step_gradient(tiny_gpt2: str, batch_size: int, accumulation: int) -> dict[str, torch.Tensor]:
    cfg, task, tokenizer, train = causal_examples(tiny_gpt2)
    training = cfg.training.model_copy(update={
        "batch_size": batch_size, "gradient_accumulation_steps": accumulation, "max_steps": 1,
        # Sorted by length, the 4 micro-batches hold very different numbers of loss tokens (5 to 89 words).
        "group_by_length": True, "max_grad_norm": None, "eval_each_epoch": False,
    })  # fmt: skip
    set_seed(0)
    model = task.load_model(tiny_gpt2)
    seen: dict[str, torch.Tensor] = {}

    def keep_gradient(model: torch.nn.Module, step: int) -> None:
        seen.update({name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None})

    full = get_strategy(cfg)
    strategy = Strategy("full", full.prepare, after_step=keep_gradient)
    # As a run makes it: a fresh Accelerate state, in float32 (an earlier run may have left bf16 autocast).
    accelerator = make_accelerator(accumulation, mixed_precision="no")
    fit(model, train, None, tokenizer, task, training, accelerator, lambda record: None,
        Path(tempfile.mkdtemp()), strategy=strategy)  # fmt: skip
    return seen


def relative_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys() and a
    numerator = sum(float((a[name] - b[name]).pow(2).sum()) for name in a)
    denominator = sum(float(b[name].pow(2).sum()) for name in b)
    return (numerator / denominator) ** 0.5


def test_four_micro_batches_of_8_give_the_gradient_of_one_batch_of_32(tiny_gpt2: str) -> None:
    whole = first_step_gradient(tiny_gpt2, batch_size=32, accumulation=1)
    accumulated = first_step_gradient(tiny_gpt2, batch_size=8, accumulation=4)
    assert relative_difference(accumulated, whole) <= 1e-6


def test_a_mean_of_the_micro_batches_means_would_have_failed(tiny_gpt2: str, monkeypatch) -> None:
    # The usual shortcut: each micro-batch's mean loss, divided by the accumulation steps.
    whole = first_step_gradient(tiny_gpt2, batch_size=32, accumulation=1)
    monkeypatch.setattr(Session, "accumulates", property(lambda self: False))
    mean_of_means = first_step_gradient(tiny_gpt2, batch_size=8, accumulation=4)
    assert relative_difference(mean_of_means, whole) > 0.05
