"""The training loop: plain PyTorch on Accelerate, one readable function.

Later features (adversarial training, custom losses, strategies) change this loop in
plain code rather than through a trainer's hooks. The loss comes from the task, not
from the model, for the same reason.
"""

from __future__ import annotations

import logging
import math
import signal
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase

from tunesmith.config import AdversarialOptions, RDropOptions, TrainingConfig
from tunesmith.speedups import TrainingSpeedups, training_speedups
from tunesmith.strategies import Strategy
from tunesmith.tasks.protocol import Task
from tunesmith.train import checkpoints
from tunesmith.train.adversarial import Adversary, Passes, build_adversary
from tunesmith.train.batching import eval_loader, train_loader
from tunesmith.train.early_stopping import EarlyStopping
from tunesmith.train.optim import build_optimizer, build_scheduler, refit_scheduler
from tunesmith.train.rdrop import rdrop_loss
from tunesmith.train.signals import GracefulStop, StopRequested

logger = logging.getLogger(__name__)

LogFn = Callable[[dict[str, Any]], None]
# Padding value for gathered per-token tensors; the token tasks ignore it.
IGNORE_INDEX = -100
# Optimizer steps timed before a time budget first fits the schedule to the steps it holds.
BUDGET_CALIBRATION_STEPS = 10


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
    # What adversarial training and R-Drop did and cost (metrics.json's training.adversarial, training.rdrop).
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def samples_per_s(self) -> float:
        """Training throughput, evaluation time excluded."""
        return self.train_samples / max(self.train_time_s - self.eval_time_s, 1e-9)

    @property
    def tokens_per_s(self) -> float:
        return self.train_tokens / max(self.train_time_s - self.eval_time_s, 1e-9)


def collect(
    model: nn.Module,
    loader: DataLoader,
    accelerator: Accelerator,
    task: Task,
    examples: list[tuple[np.ndarray, np.ndarray]] | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray], float]:
    """Per-batch predictions and targets (reduced before gathering) and the exact mean loss.

    A loader of both pair orders (`eval_loader(..., swapped=...)`) scores each pair twice,
    and its predictions and loss come from the mean of the two logits. With `examples`, each
    batch's `task.example_outputs` is gathered too and appended to it with the batch's targets,
    in the loader's order.
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
            if examples is not None:
                outputs += (task.example_outputs(logits, labels),)
            # Token tasks' batches differ in length across processes; pad before gathering.
            outputs = tuple(
                accelerator.pad_across_processes(t, dim=1, pad_index=IGNORE_INDEX) if t.dim() > 1 else t
                for t in outputs
            )
            batch_predicted, batch_targets, sums, counts, *kept = accelerator.gather_for_metrics(outputs)
            predicted.append(batch_predicted.cpu().numpy())
            targets.append(batch_targets.cpu().numpy())
            if examples is not None:
                examples.append((kept[0].cpu().numpy(), targets[-1]))
            loss_sum += float(sums.double().sum())
            loss_count += float(counts.double().sum())
    model.train()
    return predicted, targets, loss_sum / max(loss_count, 1.0)


def evaluate(
    model: nn.Module,
    loader: DataLoader,
    accelerator: Accelerator,
    task: Task,
    examples: list[tuple[np.ndarray, np.ndarray]] | None = None,
) -> dict[str, Any]:
    """The task's metrics plus the mean loss on one split (and `collect`'s `examples`)."""
    predicted, targets, loss = collect(model, loader, accelerator, task, examples)
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
    # The steps a time budget (training.max_time) was last fitted to; None: no budget, or not yet measured.
    budget_steps: int | None = None
    # Under accumulation: the power of two each micro-batch's loss sum is divided by before its backward
    # (the last batch's count per micro-batch), which keeps the summed gradients in range (fp16); 0: not yet set.
    loss_scale: float = 0.0


def planned_steps(rows: int, cfg: TrainingConfig, processes: int) -> int:
    """The optimizer steps `fit` will take on `rows` training examples (`batch_size` per process)."""
    global_batches = math.ceil(rows / (cfg.batch_size * processes))
    return cfg.max_steps or math.ceil(global_batches / cfg.gradient_accumulation_steps) * cfg.epochs


@dataclass
class Session:
    """One call of `fit`: the parts Accelerate prepared, the schedule, and where training stands.

    The tensors are kept on the device and read only when needed: reading them every step
    would force a sync.
    """

    model: nn.Module
    optimizer: Any
    scheduler: Any
    loader: DataLoader
    sampler: Any
    val_loader: DataLoader | None
    task: Task
    cfg: TrainingConfig
    accelerator: Accelerator
    log: LogFn
    checkpoint_dir: Path
    speedups: TrainingSpeedups
    strategy: Strategy | None
    steps_per_epoch: int
    total_steps: int
    progress: Progress
    stopper: EarlyStopping
    tokens: torch.Tensor
    window_loss: torch.Tensor
    # What the loss is averaged over (examples, or target tokens), summed over the micro-batches of the
    # optimizer step in progress.
    step_count: torch.Tensor
    # The RNG state to restore on resuming mid-epoch, once the skipping loader's iterator exists:
    # creating it draws from the global generator, and the uninterrupted run drew that at the
    # epoch's start.
    pending_rng: Any = None
    # Training time of the sessions before a resume, and when this one and its logging window began.
    trained_before: float = 0.0
    started: float = 0.0
    window_started: float = 0.0
    # The step this session started from, for its ETA; and whether to log progress as plain lines
    # (stderr is no terminal, so the bar is off: CI, nohup, a log file).
    first_step: int = 0
    plain_progress: bool = False
    # The last validation's duration: a time budget keeps that much for the final one.
    last_eval_s: float = 0.0
    # (step, time) from which a time budget measures the pace of training.
    pace_mark: tuple[int, float] = (0, 0.0)
    # Adversarial training's extra passes (train/adversarial.py), and R-Drop's loss (train/rdrop.py).
    adversary: Adversary | None = None
    rdrop_alpha: float = 0.0
    # Adds to each optimizer step's gradient, once it is the mean over the step's examples and before clipping:
    # weight penalties' analytic gradients and replayed old examples (continual/). Called with the unwrapped
    # model and the factor the gradients are scaled by (fp16's loss scale; 1 otherwise).
    extra_gradient: Callable[[nn.Module, float], None] | None = None

    @property
    def epochs(self) -> int:
        return math.ceil(self.total_steps / self.steps_per_epoch)

    @property
    def accumulates(self) -> bool:
        """Whether one optimizer step's gradient sums several micro-batches (accumulated, or in several
        processes); DeepSpeed steps inside its backward, where the gradient cannot be rescaled."""
        several = self.cfg.gradient_accumulation_steps > 1 or self.accelerator.num_processes > 1
        return several and self.accelerator.distributed_type != DistributedType.DEEPSPEED

    def unwrapped(self) -> nn.Module:
        return self.accelerator.unwrap_model(self.model)


def fit(
    model: nn.Module,
    train_set: datasets.Dataset,
    validation_set: datasets.Dataset | None,
    tokenizer: PreTrainedTokenizerBase,
    task: Task,
    cfg: TrainingConfig,
    accelerator: Accelerator,
    log: LogFn,
    checkpoint_dir: Path,
    resume: checkpoints.Checkpoint | None = None,
    stop: GracefulStop | None = None,
    strategy: Strategy | None = None,
    validation_swapped: datasets.Dataset | None = None,
    adversarial: AdversarialOptions | None = None,
    rdrop: RDropOptions | None = None,
    extra_gradient: Callable[[nn.Module, float], None] | None = None,
) -> tuple[nn.Module, TrainSummary]:
    """Train `model` in place; returns the (unwrapped) model, restored to its best evaluation.

    Checkpoints go to `checkpoint_dir` at every evaluation, epoch end and `save_steps`;
    the best model is restored from its checkpoint, so none is held in memory.
    `model` comes already prepared by `strategy`, whose step hooks and rates apply here.
    `validation_swapped`: the validation pairs in the other order, to score both and average.
    `adversarial`, `rdrop`: adversarial training on the embeddings and R-Drop (docs/adversarial.md).
    `extra_gradient(model, scale)`: called at each optimizer step (`Session.extra_gradient`).
    """
    collator = task.collator(tokenizer)
    processes = accelerator.num_processes
    # Packed rows (a causal task's) are nearly all full: grouping them by length would only put the few short
    # ones together, into steps of few tokens (one epoch of 1,000 rows ended 0.19 higher in loss that way).
    group_by_length = cfg.group_by_length and "position_ids" not in train_set.column_names
    loader, sampler = train_loader(train_set, collator, cfg.batch_size, cfg.seed, group_by_length, processes)
    rate_factor = strategy.rate_factor(model) if strategy and strategy.rate_factor else None
    optimizer = build_optimizer(model, cfg, rate_factor)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    val_loader = None
    if validation_set is not None and cfg.evaluates:
        val_loader = accelerator.prepare(
            eval_loader(validation_set, collator, cfg.eval_batch_size, processes, swapped=validation_swapped)
        )
    steps_per_epoch = math.ceil(len(loader) / cfg.gradient_accumulation_steps)
    total_steps = cfg.max_steps or steps_per_epoch * cfg.epochs
    session = Session(
        model, optimizer,
        # Stepped by hand once per optimizer step: a prepared scheduler would step once per process.
        build_scheduler(optimizer, cfg, total_steps),
        loader, sampler, val_loader, task, cfg, accelerator, log, checkpoint_dir,
        training_speedups(model, cfg, accelerator), strategy, steps_per_epoch, total_steps, Progress(),
        EarlyStopping(cfg.metric_for_best or task.main_metric, cfg.early_stopping_patience),
        torch.tensor(0, dtype=torch.long, device=accelerator.device),
        torch.tensor(0.0, dtype=torch.float32, device=accelerator.device),
        torch.tensor(0.0, dtype=torch.float64, device=accelerator.device),
    )  # fmt: skip
    if adversarial is not None and adversarial.method != "none":
        deepspeed = accelerator.distributed_type == DistributedType.DEEPSPEED
        session.adversary = build_adversary(accelerator.unwrap_model(model), adversarial, deepspeed)
    session.rdrop_alpha = rdrop.alpha if rdrop is not None else 0.0
    session.extra_gradient = extra_gradient
    if resume is not None:
        _restore(session, resume)
    checkpoints.remove_unfinished(checkpoint_dir)
    _train(session, stop)
    return session.unwrapped(), _finish(session)


def _restore(session: Session, resume: checkpoints.Checkpoint) -> None:
    """Weights, optimizer, schedule, progress and early stopping as the checkpoint saved them."""
    s = session
    saved, rng = checkpoints.restore(resume, s.model, s.optimizer, s.scheduler, s.accelerator)
    s.progress = Progress(**saved)
    s.stopper = EarlyStopping(**s.progress.early_stopping)
    s.accelerator.step = s.progress.accumulation_step
    s.tokens.fill_(s.progress.tokens)
    s.window_loss.fill_(s.progress.window_loss)
    s.trained_before = s.progress.train_time_s
    if s.progress.budget_steps is not None:
        s.total_steps = s.progress.budget_steps
    # Built again at the saved step (and a time budget's fitted steps): the state keeps only the step and rates.
    s.scheduler = refit_scheduler(s.scheduler, s.cfg, s.total_steps)
    if s.progress.batches_in_epoch == 0:  # at an epoch boundary: at once
        checkpoints.set_rng_state(rng)
    else:
        s.pending_rng = rng


def _train(session: Session, stop: GracefulStop | None) -> None:
    s, progress = session, session.progress
    bar = tqdm(
        total=s.total_steps,
        initial=progress.step,
        desc="Training",
        disable=None if s.accelerator.is_local_main_process else True,
        unit="step",
    )
    # tqdm turns itself off where stderr is no terminal; then each logging step is a plain line instead.
    s.plain_progress = bool(bar.disable) and s.accelerator.is_main_process
    s.first_step = progress.step
    finished = progress.step >= s.total_steps or s.stopper.should_stop
    s.started = s.window_started = time.perf_counter()
    s.model.train()
    while not finished and progress.epoch < s.epochs:
        for batch in _epoch_batches(s):
            _train_micro_batch(s, batch)
            if not s.accelerator.sync_gradients:
                continue
            s.scheduler.step()
            progress.step += 1
            bar.update(1)
            finished = _after_step(s, bar, stop)
            if finished:
                break
    bar.close()


def _epoch_batches(session: Session) -> Any:
    s, progress = session, session.progress
    # Accelerate's loader keeps its own epoch count and hands it to the sampler on each pass;
    # a resumed run must set both, or it would replay epoch 0's order.
    s.loader.set_epoch(progress.epoch)
    s.sampler.set_epoch(progress.epoch)
    if not progress.batches_in_epoch:
        return s.loader
    return s.accelerator.skip_first_batches(s.loader, progress.batches_in_epoch)


def _train_micro_batch(session: Session, batch: dict[str, torch.Tensor]) -> None:
    s, progress, accelerator = session, session.progress, session.accelerator
    if s.pending_rng is not None:
        checkpoints.set_rng_state(s.pending_rng)
        s.pending_rng = None
    # A task may finish a batch in step order, with the restored generators (masked-LM pretraining masks here).
    transform = getattr(s.task, "transform_batch", None)
    if transform is not None:
        batch = transform(batch)
    if s.strategy is not None and s.strategy.before_step is not None:
        s.strategy.before_step(s.unwrapped(), progress.step, s.steps_per_epoch)
    s.speedups.before_micro_batch(batch)
    with accelerator.accumulate(s.model):
        labels = batch.pop("labels")
        # The clean pass; adversarial training keeps its batch and embedding gradient for the extra passes.
        with s.adversary.clean(batch, labels) if s.adversary is not None else nullcontext():
            sums, counts = _forward_backward(s, batch, labels)
        # Mean over examples (over tagged tokens for token tasks); a batch of only
        # truncated-away tags counts as one so the loss stays finite.
        loss = sums.sum() / counts.sum().clamp(min=1)
        if s.adversary is not None and accelerator.sync_gradients:
            s.adversary.attack(Passes(partial(_loss, s), partial(_backward, s), partial(accelerator.no_sync, s.model)))
        if s.accumulates and accelerator.sync_gradients:
            _mean_gradient(s)
        if accelerator.sync_gradients and s.extra_gradient is not None:
            # fp16's gradient scaler has scaled the gradients so far; clipping unscales them.
            scaler = getattr(accelerator, "scaler", None)
            s.extra_gradient(s.unwrapped(), float(scaler.get_scale()) if scaler is not None else 1.0)
        if accelerator.sync_gradients and s.cfg.max_grad_norm is not None:
            accelerator.clip_grad_norm_(s.model.parameters(), s.cfg.max_grad_norm)
        s.optimizer.step()
        if s.strategy is not None and s.strategy.after_step is not None and accelerator.sync_gradients:
            s.strategy.after_step(s.unwrapped(), progress.step)
        s.optimizer.zero_grad(set_to_none=True)
    progress.batches_in_epoch += 1
    s.window_loss += loss.detach()
    progress.window_batches += 1
    progress.window_samples += labels.shape[0] * accelerator.num_processes
    progress.samples += labels.shape[0] * accelerator.num_processes
    # Packed rows (a causal task's) come without an attention mask: every position is a token.
    mask = batch.get("attention_mask")
    s.tokens += (mask.sum() if mask is not None else batch["input_ids"].numel()) * accelerator.num_processes


def _forward_backward(
    session: Session, batch: dict[str, torch.Tensor], labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """A micro-batch's clean forward and backward; its examples (or tokens) count towards the step's mean."""
    sums, counts = _loss(session, batch, labels)
    if session.accumulates:
        session.step_count += counts.sum()
    _backward(session, sums, counts)
    return sums, counts


def _loss(session: Session, batch: dict[str, torch.Tensor], labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward: per-example loss sums and what they count (examples, or target tokens)."""
    s = session
    if s.rdrop_alpha > 0:
        multilabel = s.task.info.target == "label set"
        return rdrop_loss(s.model, s.task.loss, s.rdrop_alpha, multilabel)(batch, labels)
    return s.task.loss(s.model(**batch).logits, labels)


def _backward(session: Session, sums: torch.Tensor, counts: torch.Tensor) -> None:
    """The backward of a micro-batch's loss; every pass of a step (adversarial ones too) is scaled alike."""
    s = session
    if s.accumulates:
        # The mean over the whole step's examples or tokens, not a mean of the micro-batches' means:
        # each micro-batch adds its sum, and the step divides by the count of all (`_mean_gradient`).
        s.accelerator.backward(sums.sum() / _loss_scale(s))
    else:
        s.accelerator.backward(sums.sum() / counts.sum().clamp(min=1))


def _loss_scale(session: Session) -> float:
    """What a micro-batch's loss sum is divided by before its backward (`Progress.loss_scale`); at first, the
    batch size rounded to a power of two, so that dividing and multiplying back loses nothing."""
    progress = session.progress
    if not progress.loss_scale:
        progress.loss_scale = float(2 ** round(math.log2(session.cfg.batch_size)))
    return progress.loss_scale


def _mean_gradient(session: Session) -> None:
    """Turn the step's summed gradient into the gradient of its mean loss: times the loss scale, over the
    examples or tokens counted in all micro-batches and processes. Accelerate divided each micro-batch's loss
    by the accumulation steps, and the processes' gradients were averaged; both are undone here."""
    s = session
    processes = s.accelerator.num_processes
    summed = s.accelerator.reduce(s.step_count.clone(), reduction="sum") if processes > 1 else s.step_count
    # A number, not a tensor: sharded (FSDP) gradients multiply by numbers only.
    total = max(float(summed), 1.0)
    micro_batches = s.accelerator.gradient_accumulation_steps * processes
    factor = s.progress.loss_scale * micro_batches / total
    for parameter in s.model.parameters():
        if parameter.grad is not None:
            parameter.grad.mul_(factor)
    per_micro_batch = total / micro_batches
    s.progress.loss_scale = float(2 ** round(math.log2(max(per_micro_batch, 1.0))))
    s.step_count.zero_()


def _after_step(session: Session, bar: Any, stop: GracefulStop | None) -> bool:
    """Log, evaluate and checkpoint as the schedule says after an optimizer step; True when training is done."""
    s, progress, cfg = session, session.progress, session.cfg
    step = progress.step
    epoch_end = progress.batches_in_epoch == len(s.loader)
    last = step >= s.total_steps
    if step % cfg.logging_steps == 0 or last:
        _log_window(s, bar)
    evaluated = s.val_loader is not None and (
        bool(cfg.eval_steps and step % cfg.eval_steps == 0) or (cfg.eval_each_epoch and (epoch_end or last))
    )
    if evaluated:
        _evaluate(s)
    if cfg.max_time is not None:
        _fit_time_budget(s, bar, evaluated)
        last = step >= s.total_steps
    if epoch_end:
        progress.epoch += 1
        progress.batches_in_epoch = 0
    finished = last or s.stopper.should_stop
    stopping = _stop_requested(stop, s.accelerator)
    saved = None
    if evaluated or epoch_end or finished or stopping or bool(cfg.save_steps and step % cfg.save_steps == 0):
        saved = _save_checkpoint(s)
    if stopping:
        bar.close()
        # Another process may have got the signal; this one stops with SIGTERM's code then.
        raise StopRequested((stop and stop.signum) or signal.SIGTERM, saved)
    return finished


def _fit_time_budget(session: Session, bar: Any, evaluated: bool) -> None:
    """End on time: once the first steps are timed, and at each logging step and evaluation after that, fit
    the planned steps (and so the learning-rate schedule) to what the rest of the budget holds at the pace
    so far, evaluations included; the final evaluation's time is kept aside. At a logging step past the
    budget, that step is the last. Checked at the same steps in every process, which agree on the earliest end."""
    s, progress = session, session.progress
    now = time.perf_counter()
    steps_here = progress.step - s.first_step
    if steps_here == 1:
        # The pace is timed from the end of the first step, which also pays for warming up.
        s.pace_mark = (progress.step, now)
        return
    logged = progress.step % s.cfg.logging_steps == 0
    timed = steps_here == BUDGET_CALIBRATION_STEPS or ((evaluated or logged) and steps_here > BUDGET_CALIBRATION_STEPS)
    refit = timed and progress.step < s.total_steps
    if not refit and not logged:
        return
    spent = s.trained_before + now - s.started
    planned = s.total_steps
    if spent >= float(s.cfg.max_time):
        planned = progress.step
    elif refit:
        marked_step, marked_time = s.pace_mark
        seconds_per_step = (now - marked_time) / (progress.step - marked_step)
        left = float(s.cfg.max_time) - spent - (s.last_eval_s if s.val_loader is not None else 0.0)
        planned = progress.step + max(1, int(left / seconds_per_step))
    planned = min(planned, s.cfg.max_steps or s.steps_per_epoch * s.cfg.epochs)
    if s.accelerator.num_processes > 1:
        planned = int(s.accelerator.gather(torch.tensor([planned], device=s.accelerator.device)).min())
    if planned != s.total_steps:
        s.total_steps = progress.budget_steps = planned
        s.scheduler = refit_scheduler(s.scheduler, s.cfg, planned)
        bar.total = planned
        bar.refresh()


def _log_window(session: Session, bar: Any) -> None:
    """The mean loss and speed since the last record."""
    s, progress = session, session.progress
    now = time.perf_counter()
    mean_loss = s.accelerator.reduce(s.window_loss / progress.window_batches, reduction="mean").item()
    record = {
        "step": progress.step,
        "epoch": round(progress.step / s.steps_per_epoch, 4),
        "loss": mean_loss,
        "learning_rate": s.scheduler.get_last_lr()[0],
        "samples_per_s": progress.window_samples / (now - s.window_started),
    }
    bar.set_postfix(
        loss=f"{mean_loss:.4f}", lr=f"{record['learning_rate']:.2e}", samples_s=f"{record['samples_per_s']:.0f}"
    )
    if s.plain_progress:
        logger.info(_progress_line(s, record))
    s.log(record)
    s.window_loss.zero_()
    progress.window_batches = progress.window_samples = 0
    s.window_started = time.perf_counter()


def _progress_line(session: Session, record: dict[str, Any]) -> str:
    """What the bar shows, as one line: step/total, epoch, loss, learning rate, samples/s, elapsed, ETA."""
    s, step = session, record["step"]
    elapsed = time.perf_counter() - s.started
    done = step - s.first_step
    eta = _duration(elapsed / done * (s.total_steps - step)) if done > 0 else "?"
    return (
        f"step {step}/{s.total_steps} ({100 * step / s.total_steps:.0f}%), epoch {record['epoch']:.2f}, "
        f"loss {record['loss']:.4f}, lr {record['learning_rate']:.2e}, {record['samples_per_s']:.1f} samples/s, "
        f"elapsed {_duration(elapsed)}, ETA {eta}"
    )


def _duration(seconds: float) -> str:
    """Seconds as m:ss, or h:mm:ss from an hour."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _evaluate(session: Session) -> None:
    s, progress = session, session.progress
    s.speedups.before_evaluation()
    began = time.perf_counter()
    metrics = evaluate(s.model, s.val_loader, s.accelerator, s.task)
    s.last_eval_s = time.perf_counter() - began
    progress.eval_time_s += s.last_eval_s
    s.stopper.update(metrics, progress.step)
    epoch = round(progress.step / s.steps_per_epoch, 4)
    s.log({"split": "validation", "step": progress.step, "epoch": epoch, **scalars(metrics)})
    if s.plain_progress:
        shown = ", ".join(f"{key} {value:.4f}" for key, value in scalars(metrics).items())
        logger.info("validation at step %d/%d: %s", progress.step, s.total_steps, shown)


def _save_checkpoint(session: Session) -> Path:
    s, progress = session, session.progress
    s.speedups.before_checkpoint()
    progress.tokens = int(s.tokens)
    progress.window_loss = float(s.window_loss)
    progress.train_time_s = s.trained_before + time.perf_counter() - s.started
    progress.accumulation_step = s.accelerator.step
    progress.early_stopping = asdict(s.stopper)
    saved = checkpoints.save(s.checkpoint_dir, asdict(progress), s.model, s.optimizer, s.scheduler, s.accelerator)
    if s.accelerator.is_main_process:
        checkpoints.prune(s.checkpoint_dir, s.cfg.save_total_limit, s.stopper.best_step)
    return saved.path


def _finish(session: Session) -> TrainSummary:
    """Back to dense gradients and to the best evaluation's weights; what training did and cost."""
    s, progress, stopper = session, session.progress, session.stopper
    train_time = s.trained_before + time.perf_counter() - s.started
    s.speedups.finished()
    if stopper.best_step is not None and stopper.best_step != progress.step:
        checkpoints.load_weights(checkpoints.at(s.checkpoint_dir, stopper.best_step), s.unwrapped(), s.accelerator)
    return TrainSummary(
        steps=progress.step,
        epochs=round(progress.step / s.steps_per_epoch, 4),
        train_samples=progress.samples,
        train_tokens=int(s.tokens),
        train_time_s=train_time,
        eval_time_s=progress.eval_time_s,
        best_step=stopper.best_step,
        best_metric=stopper.best,
        stopped_early=stopper.should_stop,
        # The extra passes' share of training, validations left out as they are from the speeds.
        extra=_extra_report(s, train_time - progress.eval_time_s),
    )


def _extra_report(session: Session, train_time: float) -> dict[str, Any]:
    s, extra = session, {}
    if s.adversary is not None:
        extra["adversarial"] = s.adversary.report(train_time)
    if s.rdrop_alpha > 0:
        # Each micro-batch goes through the model twice (stacked into one forward of twice the rows).
        extra["rdrop"] = {"alpha": s.rdrop_alpha, "forward_rows_relative": 2.0}
    return extra


def _stop_requested(stop: GracefulStop | None, accelerator: Accelerator) -> bool:
    """Whether any process got a stop signal; all must agree, or the checkpoint's barriers would hang."""
    requested = stop is not None and stop.requested
    if accelerator.num_processes == 1:
        return requested
    flag = torch.tensor(float(requested), device=accelerator.device)
    return bool(accelerator.reduce(flag, reduction="sum").item() > 0)
