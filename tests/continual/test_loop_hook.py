"""The loop's `extra_gradient`: called once per optimizer step, on the step's mean gradient, before clipping,
alike with and without gradient accumulation; and the setups it is refused in."""

from __future__ import annotations

import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from accelerate.utils import DistributedType, set_seed

from tunesmith.config import RunConfig, TrainingConfig, validate_config
from tunesmith.continual.pull import Pull
from tunesmith.continual.stage import check_parallelism, trainable
from tunesmith.data.splits import load_splits
from tunesmith.errors import UserError
from tunesmith.models.backbones import load_tokenizer
from tunesmith.strategies import Strategy
from tunesmith.tasks.classification import ClassificationTask
from tunesmith.train.accelerator import make_accelerator
from tunesmith.train.loop import fit


def prepared(tiny_model: str, sentiment_csv: Path, training: TrainingConfig) -> tuple:
    """The tiny model's tokenizer, the sentiment task and its tokenized training rows."""
    tokenizer = load_tokenizer(tiny_model)
    cfg = RunConfig(data={"train": sentiment_csv, "test_split": 0.0, "validation_split": 0.0}, training=training)
    loaded = load_splits(cfg.data, seed=0)
    task = ClassificationTask(cfg)
    task.fit_labels(loaded.splits["train"], sentiment_csv)
    encoded = task.encode(loaded.splits["train"], sentiment_csv)
    return tokenizer, task, {"train": task.tokenize(encoded, tokenizer, True)}


def first_step_gradient(
    tiny_model: str, sentiment_csv: Path, batch_size: int, accumulation: int, pulled: bool
) -> tuple[dict[str, torch.Tensor], int]:
    training = TrainingConfig(batch_size=batch_size, gradient_accumulation_steps=accumulation, max_steps=1,
                              max_grad_norm=None, eval_each_epoch=False, group_by_length=False,
                              max_length=32)  # fmt: skip
    tokenizer, task, encoded = prepared(tiny_model, sentiment_csv, training)
    set_seed(0)
    model = task.load_model(tiny_model)
    seen: dict[str, torch.Tensor] = {}
    calls = []
    # Anchored one below every weight: the pull adds exactly `strength` to each gradient at the first step.
    parameters = list(model.parameters())
    pull = Pull(0.5, parameters, [p.detach() - 1 for p in parameters])

    def extra(unwrapped: torch.nn.Module, scale: float) -> None:
        calls.append(scale)
        pull.add_gradient(scale)

    def keep_gradient(model: torch.nn.Module, step: int) -> None:
        seen.update({name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None})

    strategy = Strategy("full", lambda model, steps: model, after_step=keep_gradient)
    accelerator = make_accelerator(accumulation, mixed_precision="no")
    fit(model, encoded["train"], None, tokenizer, task, training, accelerator, lambda record: None,
        Path(tempfile.mkdtemp()), strategy=strategy, extra_gradient=extra if pulled else None)  # fmt: skip
    assert calls == ([1.0] if pulled else [])
    return seen, len(calls)


def test_the_extra_gradient_adds_once_to_the_steps_mean_gradient(tiny_model: str, sentiment_csv: Path):
    plain, _ = first_step_gradient(tiny_model, sentiment_csv, 32, 1, pulled=False)
    pulled, _ = first_step_gradient(tiny_model, sentiment_csv, 32, 1, pulled=True)
    accumulated, _ = first_step_gradient(tiny_model, sentiment_csv, 8, 4, pulled=True)
    for name, gradient in plain.items():
        torch.testing.assert_close(pulled[name], gradient + 0.5)
        torch.testing.assert_close(accumulated[name], pulled[name], rtol=1e-4, atol=1e-5)


def plan_of(distributed: DistributedType, processes: int, **sections) -> SimpleNamespace:
    cfg = validate_config({"data": {"train": "x.csv"}, **sections}, "test")
    return SimpleNamespace(cfg=cfg, accelerator=SimpleNamespace(distributed_type=distributed, num_processes=processes))


def test_pulls_under_sharding_and_replay_under_several_processes_are_refused():
    with pytest.raises(UserError, match="regularization.l2sp under FSDP is not supported"):
        check_parallelism(plan_of(DistributedType.FSDP, 2, regularization={"l2sp": 0.1}))
    with pytest.raises(UserError, match="continual.replay runs in one process only"):
        check_parallelism(plan_of(DistributedType.MULTI_CPU, 2, continual={"from_run": "old", "replay": 0.1}))
    # Data parallelism keeps the parameters: the pulls' analytic gradients apply there.
    check_parallelism(plan_of(DistributedType.MULTI_CPU, 2, continual={"from_run": "old", "ewc": 1.0}))


def test_pulls_hold_frozen_weights_only_where_a_strategy_unfreezes_them_later():
    frozen, moving = torch.nn.Parameter(torch.zeros(2), requires_grad=False), torch.nn.Parameter(torch.zeros(2))
    fixed = SimpleNamespace(strategy=SimpleNamespace(before_step=None))
    gradual = SimpleNamespace(strategy=SimpleNamespace(before_step=lambda model, step, steps_per_epoch: None))
    assert trainable(fixed, [frozen, moving]) == [moving]
    assert trainable(gradual, [frozen, moving]) == [frozen, moving]
