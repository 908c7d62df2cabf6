"""Fine-tune an encoder on a labelled task: the whole path of one run, top to bottom.

plan, the data stages and the data doctor check everything (config, model, folder, data) before
the run folder is opened, so bad input leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunesmith.config import RunConfig, load_config, validate_config
from tunesmith.continual.stage import forgetting, protect, read_old_task
from tunesmith.predictor import Predictor
from tunesmith.quiet import quiet_libraries
from tunesmith.stages.data import augment_train, encode_data, load_data, tokenize_splits
from tunesmith.stages.doctor import examine_data, save_findings
from tunesmith.stages.evaluate import baseline_scores, evaluate_splits, training_figures
from tunesmith.stages.model import build_model
from tunesmith.stages.plan import plan_run
from tunesmith.stages.save import open_run_folder, recording_status, save_run
from tunesmith.stages.train import train
from tunesmith.train.signals import GracefulStop


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
    transformers' and datasets' messages and bars are off while it runs (`quiet_libraries`);
    its own progress shows as a bar, or, where stderr is no terminal, as lines of the
    "tunesmith" logger.
    """
    config = as_config(config)
    if config.method != "finetune":
        # Zero-shot and contrastive runs train no task head: their own recipe, on the same stages.
        from tunesmith.fewshot.recipe import sentence_run

        return sentence_run(config, overwrite, resume)
    with quiet_libraries():
        plan = plan_run(config, overwrite, resume)
        loaded = load_data(plan)
        splits = encode_data(plan, loaded)
        old = read_old_task(plan)
        findings = examine_data(plan, loaded)
        splits = augment_train(plan, splits)
        run = open_run_folder(plan)
        with GracefulStop() as stop, recording_status(plan, run):
            save_findings(plan, run, findings)
            data = tokenize_splits(plan, splits)
            model = build_model(plan, len(data.splits["train"]))
            protection = protect(plan, model, old, len(data.splits["train"]))
            model, summary = train(plan, model, data, run, stop, on_evaluation, protection.extra_gradient)
            metrics, examples = evaluate_splits(plan, model, data)
            continual = forgetting(plan, protection)
            if continual:
                metrics["continual"] = continual
            metrics["training"] = training_figures(plan, summary, model, data)
            scores = baseline_scores(plan, data)
            if scores:
                metrics["baselines"] = scores
            save_run(plan, run, model, metrics, examples)
        plan.accelerator.wait_for_everyone()
    return Run(run.path, plan.cfg, metrics)


def as_config(config: RunConfig | dict | str | Path) -> RunConfig:
    if isinstance(config, RunConfig):
        return config
    if isinstance(config, dict):
        return validate_config(config, "the config dict")
    return load_config(Path(config))
