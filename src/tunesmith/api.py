"""Python API: `finetune(config) -> Run` and `load(run_dir) -> Predictor`.

`finetune` is the whole path of one run, top to bottom: config, data, labels,
model, training, evaluation, run folder. Every check on the user's input happens
before the run folder is created, so bad input leaves nothing behind.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import DataLoaderConfiguration, DistributedDataParallelKwargs, TorchDynamoPlugin, set_seed
from torch import nn

from tunesmith.config import RunConfig, load_config, validate_config
from tunesmith.data import augment
from tunesmith.data.splits import load_splits
from tunesmith.errors import UserError
from tunesmith.evaluate import report
from tunesmith.models.backbones import check_loadable, load_tokenizer
from tunesmith.predictor import Predictor, load  # noqa: F401  (`load` is part of this API)
from tunesmith.runs import RunFolder, resume_point
from tunesmith.speedups import apply_speedups
from tunesmith.strategies import Strategy, for_plain_transformers, get_strategy, mergeable, write_adapter
from tunesmith.tasks import get_task
from tunesmith.tasks.encoding import count_truncated
from tunesmith.tasks.ner import check_case_types, trains_case_types
from tunesmith.train.activation_checkpointing import checkpoint_activations
from tunesmith.train.batching import eval_loader
from tunesmith.train.checkpoints import sharded
from tunesmith.train.loop import TrainSummary, collect, evaluate, fit, planned_steps, scalars
from tunesmith.train.measure import parameter_counts, peak_memory_mb
from tunesmith.train.precision import resolve_precision
from tunesmith.train.signals import GracefulStop, StopRequested

logger = logging.getLogger(__name__)


@dataclass
class Run:
    """A finished run: where it lives and what it measured."""

    path: Path
    config: RunConfig
    metrics: dict[str, Any]

    def predictor(self) -> Predictor:
        return Predictor.from_run(self.path)


def finetune(
    config: RunConfig | dict | str | Path,
    overwrite: bool = False,
    resume: bool = False,
    on_evaluation: Callable[[dict[str, Any]], None] | None = None,
) -> Run:
    """Fine-tune, evaluate and save one run; returns it when it has finished.

    A run folder holding an unfinished run with a checkpoint is resumed from it
    (`resume=True` insists on that); `overwrite=True` starts afresh instead.
    `on_evaluation` sees each validation record as it is logged (a search prunes with it).
    """
    cfg = _as_config(config)
    task = get_task(cfg)
    strategy = get_strategy(cfg)
    training = cfg.training
    # Gradual unfreezing leaves layers without gradients for a while, which DDP must be told.
    unused = strategy.before_step is not None
    accelerator = make_accelerator(
        training.gradient_accumulation_steps,
        unused_parameters=unused,
        mixed_precision=resolve_precision(training.mixed_precision),
        compile=training.compile,
    )
    if sharded(accelerator) and strategy.saved_as != "model":
        raise UserError(
            f"strategy {strategy.name} under FSDP is not supported yet: its adapter would be saved from one "
            "process's shard. Launch it with plain data parallelism (no FSDP config), or use full, freeze, "
            "layerwise or bitfit."
        )

    # Every process checks the folder before the main one writes to it, so all decide alike.
    checkpoint, skipped = resume_point(cfg.run_dir(), overwrite, resume)
    if checkpoint is not None:
        _check_same_config(cfg, cfg.run_dir())
    else:
        RunFolder.check_replaceable(cfg.run_dir(), overwrite)
    accelerator.wait_for_everyone()
    data = load_splits(cfg.data, training.seed, token_level=cfg.task == "ner", context_words=cfg.ner.context_words)
    task.fit_labels(data.splits["train"], data.sources["train"])
    _check_metric(cfg, task)
    splits = {name: task.encode(split, data.sources[name]) for name, split in data.splits.items()}
    if cfg.data.swap_pairs:
        splits["train"] = augment.swap_pairs(splits["train"])
    backbone = check_loadable(cfg.model)
    if cfg.task == "ner" and cfg.ner.word_case:
        check_case_types(backbone)
    tokenizer = load_tokenizer(backbone)

    write = accelerator.is_main_process
    if not write:
        run = RunFolder(cfg.run_dir())
    elif checkpoint is None:
        run = RunFolder.create(cfg.run_dir(), overwrite)
    else:
        for reason in skipped:
            logger.warning("Skipping checkpoint %s", reason)
        logger.info("Resuming %s from step %d", cfg.run_dir(), checkpoint.step)
        run = RunFolder.reopen(cfg.run_dir(), checkpoint)
    accelerator.wait_for_everyone()
    with GracefulStop() as stop:
        try:
            if write:
                run.set_status("running", **({"resumed_from_step": checkpoint.step} if checkpoint else {}))
                run.write_yaml("config.yaml", cfg.resolved().model_dump(mode="json"))
            # One process writes the tokenization cache; the others then read it.
            with accelerator.main_process_first():
                encoded = {name: task.tokenize(split, tokenizer, name == "train") for name, split in splits.items()}
                # The evaluation splits in the other pair order, row for row, to average over both.
                swapped = {
                    name: task.tokenize(augment.swapped(splits[name]), tokenizer, False)
                    for name in ("validation", "test")
                    if name in splits and cfg.data.average_pair_orders
                }
            set_seed(training.seed)
            model = task.load_model(backbone)
            if training.gradient_checkpointing:
                checkpoint_activations(model)
            model = strategy.prepare(model, planned_steps(len(encoded["train"]), training, accelerator.num_processes))
            apply_speedups(model, training, accelerator.device)
            if cfg.task == "ner" and cfg.ner.word_case and not unused and not trains_case_types(model):
                logger.warning(
                    "ner.word_case: strategy %s freezes the token-type embeddings, so the case types never "
                    "train and add nothing. Use full, layerwise, a peft method (lora, ...) or freeze with "
                    "freeze.embeddings: false.",
                    strategy.name,
                )
            with stop.deferred():
                model, summary = fit(
                    model,
                    encoded["train"],
                    encoded.get("validation"),
                    tokenizer,
                    task,
                    training,
                    accelerator,
                    log=_logger(run.append_history if write else _ignore, on_evaluation),
                    checkpoint_dir=run.checkpoints,
                    resume=checkpoint,
                    stop=stop,
                    strategy=strategy,
                    validation_swapped=swapped.get("validation"),
                )
            loaders = {
                name: accelerator.prepare(
                    eval_loader(
                        encoded[name],
                        task.collator(tokenizer),
                        training.eval_batch_size,
                        accelerator.num_processes,
                        swapped=swapped.get(name),
                    )
                )
                for name in ("validation", "test")
                if name in encoded
            }
            if cfg.task == "multilabel" and cfg.multilabel.tune_thresholds and "validation" in loaders:
                predicted, targets, _ = collect(model, loaders["validation"], accelerator, task)
                task.tune_thresholds(predicted, targets)
            metrics: dict[str, Any] = {
                name: evaluate(model, loader, accelerator, task) for name, loader in loaders.items()
            }
            metrics["training"] = training_figures(summary, model, encoded, training.max_length, accelerator)
            # Under FSDP every process takes part in gathering the weights that the main one saves.
            weights = accelerator.get_state_dict(model) if sharded(accelerator) else None
            if write:
                run.write_json("labels.json", task.names)
                run.write_json("task.json", task.state())
                save_trained(run, cfg, strategy, model, tokenizer, weights)
                for name in ("validation", "test"):
                    if name in metrics:
                        run.append_history(
                            {"split": name, "final": True, "step": summary.steps, **scalars(metrics[name])}
                        )
                run.write_json("metrics.json", metrics)
                run.write_text("report.md", report.render(cfg.run_name(), cfg.model, cfg.task, metrics, task.names))
                run.set_status("finished")
                if not training.keep_checkpoints:
                    shutil.rmtree(run.checkpoints, ignore_errors=True)
        except StopRequested as exc:
            if write:
                saved = {"checkpoint": str(exc.checkpoint)} if exc.checkpoint else {}
                run.set_status("interrupted", signal=str(exc), **saved)
            raise
        except KeyboardInterrupt:
            if write:
                run.set_status("interrupted", signal="SIGINT")
            raise
        except BaseException as exc:
            if write:
                run.set_status("failed", error=str(exc) or type(exc).__name__)
            raise
    accelerator.wait_for_everyone()
    return Run(run.path, cfg, metrics)


def make_accelerator(
    gradient_accumulation_steps: int,
    unused_parameters: bool = False,
    mixed_precision: str = "no",
    compile: bool = False,
) -> Accelerator:
    """An Accelerator that also spans several CPU processes when launched by torchrun or accelerate.

    Without a GPU, Accelerate only goes multi-process (gloo) when told it is on the CPU;
    otherwise each process would train alone and all would write the same run folder.
    Batches are split among processes, so that N processes with batch size B step on the
    same examples as one process with batch size N*B: the same run, only faster.
    """
    several = int(os.environ.get("WORLD_SIZE", "1")) > 1
    here, gpus = int(os.environ.get("LOCAL_WORLD_SIZE", "1")), torch.cuda.device_count()
    if torch.cuda.is_available() and here > gpus:
        # Otherwise NCCL fails later with "Duplicate GPU detected" or an invalid device ordinal.
        raise UserError(
            f"{here} processes were launched on this machine, but it has {gpus} visible GPU(s), one per process. "
            f"Launch at most {gpus} (--nproc_per_node / --num_processes), or hide the GPUs "
            "(CUDA_VISIBLE_DEVICES=) to train on CPU processes."
        )
    # Accelerate keeps one settings singleton per process and refuses a second run with other
    # settings (precision, compile); the Trainer resets it the same way. The process group stays.
    AcceleratorState._reset_state(reset_partial_state=False)
    accelerator = Accelerator(
        gradient_accumulation_steps=gradient_accumulation_steps,
        cpu=several and not torch.cuda.is_available(),
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=unused_parameters)],
        dataloader_config=DataLoaderConfiguration(split_batches=True),
        mixed_precision=mixed_precision,
        # Dynamic shapes: batches differ in length, and a static compile would recompile for each.
        dynamo_plugin=TorchDynamoPlugin(backend="inductor", dynamic=True) if compile else None,
    )
    fsdp = os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"  # set by an FSDP launch config
    if fsdp and not torch.cuda.is_available() and accelerator.is_main_process:
        # Accelerate drops FSDP without a word on CPUs; say what runs instead.
        logger.warning(
            "FSDP needs GPUs, and none is visible: Accelerate ignores it here, so each of the %d process(es) "
            "holds the whole model and they train with plain data parallelism (DDP over gloo).",
            accelerator.num_processes,
        )
    return accelerator


def save_trained(
    run: RunFolder,
    cfg: RunConfig,
    strategy: Strategy,
    model: nn.Module,
    tokenizer: Any,
    weights: dict[str, torch.Tensor] | None = None,
) -> None:
    """adapter/ for adapter strategies; model/ in plain transformers format whenever the weights allow it.

    `weights`: the whole state dict, gathered from the shards under FSDP; None: the model's own.
    """
    if strategy.saved_as != "model":

        def write(folder: Path) -> None:
            write_adapter(strategy, cfg, model, folder)
            tokenizer.save_pretrained(folder)

        run.save_folder("adapter", write)
    if mergeable(cfg):
        run.save_model(for_plain_transformers(cfg, model), tokenizer, state_dict=weights)


def _check_same_config(cfg: RunConfig, run_dir: Path) -> None:
    """A run resumes only with the settings it started with: a changed schedule or data order is a different run."""
    try:
        saved = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        saved = None
    current = yaml.safe_load(yaml.safe_dump(cfg.resolved().model_dump(mode="json")))
    changes = _differences(saved, current) if isinstance(saved, dict) else ["config.yaml is missing or unreadable"]
    if changes:
        raise UserError(
            f"{run_dir} holds a checkpoint of a run with other settings ({'; '.join(changes[:5])}). "
            "Resume with the settings it started with, or pass --overwrite to start a new run there."
        )


def _differences(saved: dict[str, Any], current: dict[str, Any], prefix: str = "") -> list[str]:
    changes = []
    for key in sorted(set(saved) | set(current)):
        before, after = saved.get(key), current.get(key)
        if isinstance(before, dict) and isinstance(after, dict):
            changes += _differences(before, after, f"{prefix}{key}.")
        elif before != after:
            changes.append(f"{prefix}{key}: {before!r} then, {after!r} now")
    return changes


def _check_metric(cfg: RunConfig, task: Any) -> None:
    wanted = cfg.training.metric_for_best
    if wanted is not None and wanted not in task.metric_names:
        raise UserError(
            f'training.metric_for_best "{wanted}" is not a {cfg.task} metric. '
            f"Choose one of: {', '.join(task.metric_names)}."
        )


def training_figures(
    summary: TrainSummary, model: nn.Module, encoded: dict[str, Any], max_length: int, accelerator: Accelerator
) -> dict[str, Any]:
    """The `training` section of metrics.json: cost, size and data counts of the run."""
    return {
        "steps": summary.steps,
        "epochs": summary.epochs,
        "train_time_s": round(summary.train_time_s, 3),
        # Validation during training; part of train_time_s, left out of the speeds.
        "eval_time_s": round(summary.eval_time_s, 3),
        "samples_per_s": round(summary.samples_per_s, 2),
        "tokens_per_s": round(summary.tokens_per_s, 1),
        "peak_memory_mb": round(peak_memory_mb(accelerator.device), 1),
        **parameter_counts(model),
        "best_step": summary.best_step,
        "best_metric": summary.best_metric,
        "stopped_early": summary.stopped_early,
        "examples": {name: len(split) for name, split in encoded.items()},
        # Examples whose tokens reached max_length, i.e. were (or may have been) cut.
        "truncated": {name: count_truncated(split, max_length) for name, split in encoded.items()},
        "processes": accelerator.num_processes,
        "mixed_precision": accelerator.mixed_precision,
        "device": str(accelerator.device),
    }


def _as_config(config: RunConfig | dict | str | Path) -> RunConfig:
    if isinstance(config, RunConfig):
        return config
    if isinstance(config, dict):
        return validate_config(config, "the config dict")
    return load_config(Path(config))


def _ignore(record: dict[str, Any]) -> None:
    pass


def _logger(
    write: Callable[[dict[str, Any]], None], on_evaluation: Callable[[dict[str, Any]], None] | None
) -> Callable[[dict[str, Any]], None]:
    if on_evaluation is None:
        return write

    def log(record: dict[str, Any]) -> None:
        write(record)
        if record.get("split") == "validation":
            on_evaluation(record)

    return log
