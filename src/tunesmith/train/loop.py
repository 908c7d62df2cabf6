"""The training loop: plain PyTorch on Accelerate, one readable function.

Later features (adversarial training, custom losses, strategies) change this loop in
plain code rather than through a trainer's hooks. The loss comes from the task, not
from the model, for the same reason.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import datasets
import numpy as np
import torch
from accelerate import Accelerator
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase

from tunesmith.config import TrainingConfig
from tunesmith.train.batching import eval_loader, train_loader
from tunesmith.train.early_stopping import EarlyStopping
from tunesmith.train.optim import build_optimizer, build_scheduler

LogFn = Callable[[dict[str, Any]], None]
# Padding value for gathered per-token tensors; the token tasks ignore it.
IGNORE_INDEX = -100


@dataclass
class TrainSummary:
    steps: int
    epochs: float
    train_samples: int
    train_tokens: int
    train_time_s: float
    eval_time_s: float
    best_step: int | None
    best_metric: float | None
    stopped_early: bool

    @property
    def samples_per_s(self) -> float:
        """Training throughput, evaluation time excluded."""
        return self.train_samples / max(self.train_time_s - self.eval_time_s, 1e-9)

    @property
    def tokens_per_s(self) -> float:
        return self.train_tokens / max(self.train_time_s - self.eval_time_s, 1e-9)


def collect(
    model: nn.Module, loader: DataLoader, accelerator: Accelerator, task: Any
) -> tuple[list[np.ndarray], list[np.ndarray], float]:
    """Per-batch predictions and targets (reduced before gathering) and the exact mean loss."""
    model.eval()
    predicted, targets = [], []
    loss_sum = loss_count = 0.0
    with torch.no_grad():
        for batch in loader:
            labels = batch.pop("labels")
            logits = model(**batch).logits
            sums, counts = task.loss(logits, labels)
            outputs = (task.predictions(logits, labels), labels, sums, counts)
            # Token tasks' batches differ in length across processes; pad before gathering.
            outputs = tuple(
                accelerator.pad_across_processes(t, dim=1, pad_index=IGNORE_INDEX) if t.dim() > 1 else t
                for t in outputs
            )
            batch_predicted, batch_targets, sums, counts = accelerator.gather_for_metrics(outputs)
            predicted.append(batch_predicted.cpu().numpy())
            targets.append(batch_targets.cpu().numpy())
            loss_sum += float(sums.double().sum())
            loss_count += float(counts.double().sum())
    model.train()
    return predicted, targets, loss_sum / max(loss_count, 1.0)


def evaluate(model: nn.Module, loader: DataLoader, accelerator: Accelerator, task: Any) -> dict[str, Any]:
    """The task's metrics plus the mean loss on one split."""
    predicted, targets, loss = collect(model, loader, accelerator, task)
    metrics = task.compute_metrics(predicted, targets)
    metrics["loss"] = loss
    return metrics


def scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {key: value for key, value in metrics.items() if isinstance(value, (int, float))}


def fit(
    model: nn.Module,
    train_set: datasets.Dataset,
    validation_set: datasets.Dataset | None,
    tokenizer: PreTrainedTokenizerBase,
    task: Any,
    cfg: TrainingConfig,
    accelerator: Accelerator,
    log: LogFn,
) -> tuple[nn.Module, TrainSummary]:
    """Train `model` in place; returns the (unwrapped) model, restored to its best evaluation."""
    collator = task.collator(tokenizer)
    loader, sampler = train_loader(train_set, collator, cfg.batch_size, cfg.seed, cfg.group_by_length)
    evaluating = validation_set is not None and cfg.evaluates
    optimizer = build_optimizer(model, cfg)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    val_loader = accelerator.prepare(eval_loader(validation_set, collator, cfg.eval_batch_size)) if evaluating else None

    steps_per_epoch = math.ceil(len(loader) / cfg.gradient_accumulation_steps)
    total_steps = cfg.max_steps or steps_per_epoch * cfg.epochs
    epochs = math.ceil(total_steps / steps_per_epoch)
    # Stepped by hand once per optimizer step: a prepared scheduler would step once per process.
    scheduler = build_scheduler(optimizer, cfg, total_steps)
    stopper = EarlyStopping(cfg.metric_for_best or task.main_metric, cfg.early_stopping_patience)
    best_state: dict[str, torch.Tensor] | None = None

    step = samples = 0
    # Kept on the device and read once at the end: reading it every step would force a sync.
    tokens = torch.zeros((), dtype=torch.long, device=accelerator.device)
    window_loss = torch.zeros((), device=accelerator.device)
    window_batches = window_samples = 0
    eval_time = 0.0
    started = window_start = time.perf_counter()
    bar = tqdm(
        total=total_steps, desc="Training", disable=None if accelerator.is_local_main_process else True, unit="step"
    )

    def run_evaluation() -> None:
        nonlocal best_state, eval_time
        began = time.perf_counter()
        metrics = evaluate(model, val_loader, accelerator, task)
        eval_time += time.perf_counter() - began
        if stopper.update(metrics, step):
            unwrapped = accelerator.unwrap_model(model)
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in unwrapped.state_dict().items()}
        log({"split": "validation", "step": step, "epoch": round(step / steps_per_epoch, 4), **scalars(metrics)})

    model.train()
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for batch in loader:
            with accelerator.accumulate(model):
                labels = batch.pop("labels")
                sums, counts = task.loss(model(**batch).logits, labels)
                # Mean over examples (over tagged tokens for token tasks); a batch of only
                # truncated-away tags counts as one so the loss stays finite.
                loss = sums.sum() / counts.sum().clamp(min=1)
                accelerator.backward(loss)
                if accelerator.sync_gradients and cfg.max_grad_norm is not None:
                    accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            window_loss += loss.detach()
            window_batches += 1
            window_samples += labels.shape[0] * accelerator.num_processes
            samples += labels.shape[0] * accelerator.num_processes
            tokens += batch["attention_mask"].sum() * accelerator.num_processes
            if not accelerator.sync_gradients:
                continue
            scheduler.step()
            step += 1
            bar.update(1)
            if step % cfg.logging_steps == 0 or step == total_steps:
                now = time.perf_counter()
                mean_loss = accelerator.reduce(window_loss / window_batches, reduction="mean").item()
                record = {
                    "step": step,
                    "epoch": round(step / steps_per_epoch, 4),
                    "loss": mean_loss,
                    "learning_rate": scheduler.get_last_lr()[0],
                    "samples_per_s": window_samples / (now - window_start),
                }
                bar.set_postfix(
                    loss=f"{mean_loss:.4f}",
                    lr=f"{record['learning_rate']:.2e}",
                    samples_s=f"{record['samples_per_s']:.0f}",
                )
                log(record)
                window_loss.zero_()
                window_batches = window_samples = 0
                window_start = time.perf_counter()
            if evaluating and cfg.eval_steps and step % cfg.eval_steps == 0:
                run_evaluation()
            if step >= total_steps or stopper.should_stop:
                break
        already_evaluated = cfg.eval_steps is not None and step % cfg.eval_steps == 0
        if evaluating and cfg.eval_each_epoch and not already_evaluated and not stopper.should_stop:
            run_evaluation()
        if step >= total_steps or stopper.should_stop:
            break
    bar.close()
    train_time = time.perf_counter() - started

    unwrapped = accelerator.unwrap_model(model)
    if best_state is not None and stopper.best_step != step:
        unwrapped.load_state_dict(best_state)
    summary = TrainSummary(
        steps=step,
        epochs=round(step / steps_per_epoch, 4),
        train_samples=samples,
        train_tokens=int(tokens),
        train_time_s=train_time,
        eval_time_s=eval_time,
        best_step=stopper.best_step,
        best_metric=stopper.best,
        stopped_early=stopper.should_stop,
    )
    return unwrapped, summary
