"""The training loop: plain PyTorch on Accelerate, one readable function.

Later features (adversarial training, custom losses, strategies) change this loop in
plain code rather than through a trainer's hooks. The loss comes from the task, not
from the model, for the same reason.
"""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
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
from tunesmith.speedups import training_speedups
from tunesmith.strategies import Strategy
from tunesmith.train import checkpoints
from tunesmith.train.batching import eval_loader, train_loader
from tunesmith.train.early_stopping import EarlyStopping
from tunesmith.train.optim import build_optimizer, build_scheduler
from tunesmith.train.signals import GracefulStop, StopRequested

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
    """Per-batch predictions and targets (reduced before gathering) and the exact mean loss.

    A loader of both pair orders (`eval_loader(..., swapped=...)`) scores each pair twice,
    and its predictions and loss come from the mean of the two logits.
    """
    model.eval()
    predicted, targets = [], []
    loss_sum = loss_count = 0.0
    with torch.no_grad():
        for batch in loader:
            batch, swapped = batch if isinstance(batch, tuple) else (batch, None)
            labels = batch.pop("labels")
            logits = model(**batch).logits
            if swapped is not None:
                swapped.pop("labels")
                logits = (logits + model(**swapped).logits) / 2
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


@dataclass
class Progress:
    """Where training stands: what a checkpoint saves beside the weights, optimizer and RNG."""

    step: int = 0
    epoch: int = 0
    # Batches of `epoch` already trained on; a resumed run skips them.
    batches_in_epoch: int = 0
    samples: int = 0
    tokens: int = 0
    train_time_s: float = 0.0
    eval_time_s: float = 0.0
    # The partly filled logging window, so a resumed run logs the same mean losses.
    window_loss: float = 0.0
    window_batches: int = 0
    window_samples: int = 0
    # Accelerate's micro-batch counter, which decides when accumulated gradients sync.
    accumulation_step: int = 0
    early_stopping: dict[str, Any] = field(default_factory=dict)


def planned_steps(rows: int, cfg: TrainingConfig, processes: int) -> int:
    """The optimizer steps `fit` will take on `rows` training examples (`batch_size` per process)."""
    global_batches = math.ceil(rows / (cfg.batch_size * processes))
    return cfg.max_steps or math.ceil(global_batches / cfg.gradient_accumulation_steps) * cfg.epochs


def fit(
    model: nn.Module,
    train_set: datasets.Dataset,
    validation_set: datasets.Dataset | None,
    tokenizer: PreTrainedTokenizerBase,
    task: Any,
    cfg: TrainingConfig,
    accelerator: Accelerator,
    log: LogFn,
    checkpoint_dir: Path,
    resume: checkpoints.Checkpoint | None = None,
    stop: GracefulStop | None = None,
    strategy: Strategy | None = None,
    validation_swapped: datasets.Dataset | None = None,
) -> tuple[nn.Module, TrainSummary]:
    """Train `model` in place; returns the (unwrapped) model, restored to its best evaluation.

    Checkpoints go to `checkpoint_dir` at every evaluation, epoch end and `save_steps`;
    the best model is restored from its checkpoint, so none is held in memory.
    `model` comes already prepared by `strategy`, whose step hooks and rates apply here.
    `validation_swapped`: the validation pairs in the other order, to score both and average.
    """
    collator = task.collator(tokenizer)
    processes = accelerator.num_processes
    loader, sampler = train_loader(train_set, collator, cfg.batch_size, cfg.seed, cfg.group_by_length, processes)
    evaluating = validation_set is not None and cfg.evaluates
    rate_factor = strategy.rate_factor(model) if strategy and strategy.rate_factor else None
    optimizer = build_optimizer(model, cfg, rate_factor)
    before_step = strategy.before_step if strategy else None
    after_step = strategy.after_step if strategy else None
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    speedups = training_speedups(model, cfg, accelerator)
    val_loader = None
    if evaluating:
        val_loader = accelerator.prepare(
            eval_loader(validation_set, collator, cfg.eval_batch_size, processes, swapped=validation_swapped)
        )

    steps_per_epoch = math.ceil(len(loader) / cfg.gradient_accumulation_steps)
    total_steps = cfg.max_steps or steps_per_epoch * cfg.epochs
    epochs = math.ceil(total_steps / steps_per_epoch)
    # Stepped by hand once per optimizer step: a prepared scheduler would step once per process.
    scheduler = build_scheduler(optimizer, cfg, total_steps)
    stopper = EarlyStopping(cfg.metric_for_best or task.main_metric, cfg.early_stopping_patience)
    progress = Progress()
    # The RNG state to restore on resuming: at once at an epoch boundary; mid-epoch only once the
    # skipping loader's iterator exists, since creating it draws from the global generator, and the
    # uninterrupted run drew that at the epoch's start.
    pending_rng = None
    if resume is not None:
        saved, pending_rng = checkpoints.restore(resume, model, optimizer, scheduler, accelerator)
        progress = Progress(**saved)
        stopper = EarlyStopping(**progress.early_stopping)
        accelerator.step = progress.accumulation_step
        if progress.batches_in_epoch == 0:
            checkpoints.set_rng_state(pending_rng)
            pending_rng = None
    checkpoints.remove_unfinished(checkpoint_dir)

    # Kept on the device and read only when needed: reading them every step would force a sync.
    tokens = torch.tensor(progress.tokens, dtype=torch.long, device=accelerator.device)
    window_loss = torch.tensor(progress.window_loss, dtype=torch.float32, device=accelerator.device)
    session_start = window_start = time.perf_counter()
    trained_before = progress.train_time_s
    bar = tqdm(
        total=total_steps,
        initial=progress.step,
        desc="Training",
        disable=None if accelerator.is_local_main_process else True,
        unit="step",
    )

    def run_evaluation() -> None:
        speedups.before_evaluation()
        began = time.perf_counter()
        metrics = evaluate(model, val_loader, accelerator, task)
        progress.eval_time_s += time.perf_counter() - began
        stopper.update(metrics, progress.step)
        log(
            {
                "split": "validation",
                "step": progress.step,
                "epoch": round(progress.step / steps_per_epoch, 4),
                **scalars(metrics),
            }
        )

    def save_checkpoint() -> Path:
        speedups.before_checkpoint()
        progress.tokens = int(tokens)
        progress.window_loss = float(window_loss)
        progress.train_time_s = trained_before + time.perf_counter() - session_start
        progress.accumulation_step = accelerator.step
        progress.early_stopping = asdict(stopper)
        saved = checkpoints.save(checkpoint_dir, asdict(progress), model, optimizer, scheduler, accelerator)
        if accelerator.is_main_process:
            checkpoints.prune(checkpoint_dir, cfg.save_total_limit, stopper.best_step)
        return saved.path

    finished = progress.step >= total_steps or stopper.should_stop
    model.train()
    while not finished and progress.epoch < epochs:
        # Accelerate's loader keeps its own epoch count and hands it to the sampler on each pass;
        # a resumed run must set both, or it would replay epoch 0's order.
        loader.set_epoch(progress.epoch)
        sampler.set_epoch(progress.epoch)
        batches = loader
        if progress.batches_in_epoch:
            batches = accelerator.skip_first_batches(loader, progress.batches_in_epoch)
        for batch in batches:
            if pending_rng is not None:
                checkpoints.set_rng_state(pending_rng)
                pending_rng = None
            if before_step is not None:
                before_step(accelerator.unwrap_model(model), progress.step, steps_per_epoch)
            speedups.before_micro_batch(batch)
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
                if after_step is not None and accelerator.sync_gradients:
                    after_step(accelerator.unwrap_model(model), progress.step)
                optimizer.zero_grad(set_to_none=True)
            progress.batches_in_epoch += 1
            window_loss += loss.detach()
            progress.window_batches += 1
            progress.window_samples += labels.shape[0] * accelerator.num_processes
            progress.samples += labels.shape[0] * accelerator.num_processes
            tokens += batch["attention_mask"].sum() * accelerator.num_processes
            if not accelerator.sync_gradients:
                continue
            scheduler.step()
            progress.step += 1
            step = progress.step
            bar.update(1)
            epoch_end = progress.batches_in_epoch == len(loader)
            last = step >= total_steps
            if step % cfg.logging_steps == 0 or last:
                now = time.perf_counter()
                mean_loss = accelerator.reduce(window_loss / progress.window_batches, reduction="mean").item()
                record = {
                    "step": step,
                    "epoch": round(step / steps_per_epoch, 4),
                    "loss": mean_loss,
                    "learning_rate": scheduler.get_last_lr()[0],
                    "samples_per_s": progress.window_samples / (now - window_start),
                }
                bar.set_postfix(
                    loss=f"{mean_loss:.4f}",
                    lr=f"{record['learning_rate']:.2e}",
                    samples_s=f"{record['samples_per_s']:.0f}",
                )
                log(record)
                window_loss.zero_()
                progress.window_batches = progress.window_samples = 0
                window_start = time.perf_counter()
            evaluated = evaluating and (
                bool(cfg.eval_steps and step % cfg.eval_steps == 0) or (cfg.eval_each_epoch and (epoch_end or last))
            )
            if evaluated:
                run_evaluation()
            if epoch_end:
                progress.epoch += 1
                progress.batches_in_epoch = 0
            finished = last or stopper.should_stop
            stopping = _stop_requested(stop, accelerator)
            saved = None
            if evaluated or epoch_end or finished or stopping or bool(cfg.save_steps and step % cfg.save_steps == 0):
                saved = save_checkpoint()
            if stopping:
                bar.close()
                # Another process may have got the signal; this one stops with SIGTERM's code then.
                raise StopRequested((stop and stop.signum) or signal.SIGTERM, saved)
            if finished:
                break
    bar.close()
    train_time = trained_before + time.perf_counter() - session_start
    speedups.finished()

    unwrapped = accelerator.unwrap_model(model)
    if stopper.best_step is not None and stopper.best_step != progress.step:
        checkpoints.load_weights(checkpoints.at(checkpoint_dir, stopper.best_step), unwrapped, accelerator)
    summary = TrainSummary(
        steps=progress.step,
        epochs=round(progress.step / steps_per_epoch, 4),
        train_samples=progress.samples,
        train_tokens=int(tokens),
        train_time_s=train_time,
        eval_time_s=progress.eval_time_s,
        best_step=stopper.best_step,
        best_metric=stopper.best,
        stopped_early=stopper.should_stop,
    )
    return unwrapped, summary


def _stop_requested(stop: GracefulStop | None, accelerator: Accelerator) -> bool:
    """Whether any process got a stop signal; all must agree, or the checkpoint's barriers would hang."""
    requested = stop is not None and stop.requested
    if accelerator.num_processes == 1:
        return requested
    flag = torch.tensor(float(requested), device=accelerator.device)
    return bool(accelerator.reduce(flag, reduction="sum").item() > 0)
