from pathlib import Path

import pytest
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed

from tunesmith.config import RunConfig, TrainingConfig
from tunesmith.data.splits import load_splits
from tunesmith.models.backbones import load_tokenizer
from tunesmith.tasks.classification import ClassificationTask
from tunesmith.train import loop
from tunesmith.train.loop import fit


def prepared(tiny_model: str, sentiment_csv: Path, training: TrainingConfig) -> tuple:
    tokenizer = load_tokenizer(tiny_model)
    cfg = RunConfig(
        data={"train": sentiment_csv, "test_split": 0.0, "validation_split": 0.25},
        training=training.model_copy(update={"max_length": 32}),
    )
    loaded = load_splits(cfg.data, seed=0)
    task = ClassificationTask(cfg)
    task.fit_labels(loaded.splits["train"], sentiment_csv)
    encoded = {
        name: task.tokenize(task.encode(split, sentiment_csv), tokenizer, name == "train")
        for name, split in loaded.splits.items()
    }
    return tokenizer, task, encoded


def train(tiny_model: str, sentiment_csv: Path, **overrides) -> tuple:
    # A random tiny BERT sits on a plateau for a few epochs before it learns, hence 12 epochs.
    cfg = TrainingConfig(
        **{"epochs": 12, "batch_size": 8, "learning_rate": 1e-3, "warmup_ratio": 0.0, "logging_steps": 2, **overrides}
    )
    tokenizer, task, encoded = prepared(tiny_model, sentiment_csv, cfg)
    set_seed(0)
    model = task.load_model(tiny_model)
    log: list[dict] = []
    accelerator = Accelerator(gradient_accumulation_steps=cfg.gradient_accumulation_steps)
    model, summary = fit(model, encoded["train"], encoded["validation"], tokenizer, task, cfg, accelerator, log.append)
    return model, summary, log


def test_training_learns_an_easy_task(tiny_model: str, sentiment_csv: Path) -> None:
    _, summary, log = train(tiny_model, sentiment_csv)
    losses = [r["loss"] for r in log if "split" not in r]
    evaluations = [r for r in log if r.get("split") == "validation"]
    assert len(evaluations) == 12 and summary.steps == 12 * 8
    assert losses[0] > 0.65 and losses[-1] < 0.4  # from chance (ln 2) to well below it
    assert evaluations[-1]["accuracy"] >= 0.9
    assert summary.train_samples == 12 * 60 and summary.samples_per_s > 0


def test_max_steps_caps_training(tiny_model: str, sentiment_csv: Path) -> None:
    _, summary, _ = train(tiny_model, sentiment_csv, max_steps=5, eval_each_epoch=False)
    assert summary.steps == 5 and summary.best_step is None


def test_eval_every_n_steps_and_or_each_epoch(tiny_model: str, sentiment_csv: Path) -> None:
    _, _, log = train(tiny_model, sentiment_csv, eval_each_epoch=False, eval_steps=6, epochs=2)
    assert [r["step"] for r in log if r.get("split") == "validation"] == [6, 12]
    # Both: every 6 steps and at each epoch end (8, 16), once only where they coincide.
    _, _, log = train(tiny_model, sentiment_csv, eval_steps=6, epochs=3)
    assert [r["step"] for r in log if r.get("split") == "validation"] == [6, 8, 12, 16, 18, 24]


def test_early_stopping_stops_and_restores_the_best_model(
    tiny_model: str, sentiment_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripted = iter([0.5, 0.8, 0.7, 0.6, 0.95])
    snapshots = []

    def scripted_evaluate(model, loader, accelerator, task):
        snapshots.append({k: v.clone() for k, v in accelerator.unwrap_model(model).state_dict().items()})
        return {"accuracy": next(scripted), "loss": 1.0}

    monkeypatch.setattr(loop, "evaluate", scripted_evaluate)
    model, summary, log = train(tiny_model, sentiment_csv, early_stopping_patience=2)
    steps = [r["step"] for r in log if r.get("split") == "validation"]
    assert steps == [8, 16, 24, 32]  # 0.7 and 0.6 do not beat 0.8: stop after two evaluations
    assert summary.stopped_early and summary.best_step == 16 and summary.best_metric == 0.8
    best = snapshots[1]
    assert all(torch.equal(value, best[key]) for key, value in model.state_dict().items())
    assert not torch.equal(snapshots[3]["classifier.weight"], best["classifier.weight"])


def test_gradient_accumulation_matches_a_larger_batch(tiny_model: str, sentiment_csv: Path) -> None:
    common = {"max_steps": 3, "eval_each_epoch": False, "group_by_length": False}
    big, _, _ = train(tiny_model, sentiment_csv, batch_size=8, **common)
    accumulated, _, _ = train(tiny_model, sentiment_csv, batch_size=4, gradient_accumulation_steps=2, **common)
    for (name, a), (_, b) in zip(big.named_parameters(), accumulated.named_parameters(), strict=True):
        assert torch.allclose(a, b, atol=2e-4), name
