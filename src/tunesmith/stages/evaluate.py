"""Evaluate: the task's fitting on validation outputs once training is over, then scores on
validation and test, each example's prediction (predictions.jsonl, which the report reads),
and the training figures of metrics.json."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from accelerate import Accelerator
from torch import nn
from torch.utils.data import DataLoader

from tunesmith.evaluate import baselines, calibration, probe
from tunesmith.stages.data import EVALUATION_SPLITS, TokenizedData
from tunesmith.tasks.encoding import count_truncated
from tunesmith.tasks.protocol import Task
from tunesmith.train.batching import eval_loader, evaluation_order
from tunesmith.train.loop import TrainSummary, collect, evaluate
from tunesmith.train.measure import parameter_counts, peak_memory_mb

if TYPE_CHECKING:
    import datasets

    from tunesmith.stages.plan import Plan


def evaluate_splits(plan: Plan, model: nn.Module, data: TokenizedData) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Metrics per evaluation split, after the task has fitted what it fits on validation, and one
    record per evaluation example (`example_records`), in the splits' row order."""
    task, accelerator = plan.task, plan.accelerator
    loaders = {
        name: evaluation_loader(plan, data.splits[name], data.swapped.get(name))
        for name in EVALUATION_SPLITS
        if name in data.splits
    }
    validation = None
    if "validation" in loaders:

        def validation() -> tuple[list, list]:
            predicted, targets, _ = collect(model, loaders["validation"], accelerator, task)
            return predicted, targets

    task.after_training(validation)
    metrics, examples = {}, []
    for name, loader in loaders.items():
        outputs: list[tuple[np.ndarray, np.ndarray]] = []
        metrics[name] = evaluate(model, loader, accelerator, task, outputs)
        records = split_records(task, data.splits[name], outputs)
        metrics[name].update(calibration.scores(records))
        examples += [{"split": name, **record} for record in records]
    if task.info.generative and accelerator.is_main_process:
        # Scored by generating: exact match and ROUGE-L against the references (tasks/causal.py).
        for name in metrics:
            metrics[name].update(
                task.generation_scores(accelerator.unwrap_model(model), plan.tokenizer, data.splits[name])
            )
    return metrics, examples


def split_records(
    task: Task, split: datasets.Dataset, outputs: list[tuple[np.ndarray, np.ndarray]]
) -> list[dict[str, Any]]:
    """`task.example_records` of every row, back in the split's order, with where it came from and its text."""
    loader_records = [record for kept, targets in outputs for record in task.example_records(kept, targets)]
    if len(loader_records) != len(split):  # never expected: the loader yields each row once
        raise RuntimeError(f"{len(loader_records)} example outputs for {len(split)} rows")
    order = evaluation_order(split) or range(len(split))
    records: list[dict[str, Any]] = [{}] * len(split)
    for position, row in enumerate(order):
        records[row] = loader_records[position]
    columns = [name for name in ("line", "text", "text_pair") if name in split.column_names]
    values = {name: split[name] for name in columns}
    return [{**{name: values[name][row] for name in columns}, **records[row]} for row in range(len(split))]


def baseline_scores(plan: Plan, data: TokenizedData) -> dict[str, Any]:
    """The baselines' scores on the evaluation splits (evaluate/baselines.py); measured by the main
    process alone, which writes metrics.json, and only where the task has baselines and they are on."""
    options, seed = plan.cfg.report, plan.cfg.training.seed
    chosen = baselines.wanted(options.baselines)
    if not (chosen and plan.accelerator.is_main_process and baselines.applies(plan.task)):
        return {}
    scores = baselines.measure(plan.task, data.splits, EVALUATION_SPLITS, options.baseline_rows, seed, chosen)
    if chosen & {probe.PROBE, probe.ZERO_SHOT}:
        scores.update(pretrained_scores(plan, data, chosen))
    return scores


def pretrained_scores(plan: Plan, data: TokenizedData, chosen: set[str]) -> dict[str, Any]:
    """The pretrained backbone before fine-tuning: a linear probe on its frozen embeddings and, for a
    sentence encoder, zero-shot by label-name similarity (evaluate/probe.py)."""
    from tunesmith.fewshot.encoder import SentenceEncoder

    cfg = plan.cfg
    encoder = SentenceEncoder.from_backbone(plan.backbone, cfg.training.max_length)
    encoder.to(plan.accelerator.device)
    if not probe.is_sentence_encoder(plan.backbone):
        chosen = chosen - {probe.ZERO_SHOT}
    return probe.measure(
        plan.task,
        data.splits,
        EVALUATION_SPLITS,
        encoder,
        chosen,
        cfg.report.probe_rows,
        cfg.training.seed,
        cfg.zero_shot,
    )


def evaluation_loader(plan: Plan, encoded: datasets.Dataset, swapped: datasets.Dataset | None) -> DataLoader:
    return prepared_loader(
        plan.task, plan.tokenizer, encoded, swapped, plan.cfg.training.eval_batch_size, plan.accelerator
    )


def prepared_loader(
    task: Task,
    tokenizer: Any,
    encoded: datasets.Dataset,
    swapped: datasets.Dataset | None,
    batch_size: int,
    accelerator: Accelerator,
) -> DataLoader:
    """Batches of one split for `evaluate`, shared out among the processes."""
    loader = eval_loader(encoded, task.collator(tokenizer), batch_size, accelerator.num_processes, swapped=swapped)
    return accelerator.prepare(loader)


def training_figures(plan: Plan, summary: TrainSummary, model: nn.Module, data: TokenizedData) -> dict[str, Any]:
    """The `training` section of metrics.json: cost, size and data counts of the run."""
    accelerator, max_length = plan.accelerator, plan.cfg.training.max_length
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
        "examples": {name: example_count(split) for name, split in data.splits.items()},
        # Examples whose tokens reached max_length, i.e. were (or may have been) cut.
        "truncated": {name: count_truncated(split, max_length) for name, split in data.splits.items()},
        # A generative task's examples that truncation left nothing to learn, kept out of training and the loss.
        **({"cut_away": plan.task.cut_away} if plan.task.info.generative else {}),
        "processes": accelerator.num_processes,
        "mixed_precision": accelerator.mixed_precision,
        "device": str(accelerator.device),
        # Adversarial training's and R-Drop's settings and added compute, where used.
        **summary.extra,
    }


def example_count(split: datasets.Dataset) -> int:
    """The examples of a split; packed rows (a generative task's) say how many each holds."""
    return sum(split["examples"]) if "examples" in split.column_names else len(split)
