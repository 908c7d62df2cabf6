"""Save: the run folder. Opened (created, or reopened to resume) only once every check has
passed; its status says running until the results are written, then finished, or failed or
interrupted if the run ends otherwise."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from tunesmith.evaluate import model_card
from tunesmith.evaluate.parts import EXPLANATIONS, PREDICTIONS, worst_errors
from tunesmith.evaluate.rebuild import write_report
from tunesmith.runs import RunFolder, write_atomic
from tunesmith.strategies import for_plain_transformers, mergeable, write_adapter
from tunesmith.train.checkpoints import sharded
from tunesmith.train.loop import scalars
from tunesmith.train.signals import StopRequested

if TYPE_CHECKING:
    from tunesmith.stages.plan import Plan

logger = logging.getLogger(__name__)


def open_run_folder(plan: Plan) -> RunFolder:
    """The run folder, created (or reopened to resume) by the main process; the first write of a run."""
    cfg, accelerator = plan.cfg, plan.accelerator
    if not plan.writes:
        run = RunFolder(cfg.run_dir())
    elif plan.checkpoint is None:
        run = RunFolder.create(cfg.run_dir(), plan.overwrite)
    else:
        for reason in plan.skipped:
            logger.warning("Skipping checkpoint %s", reason)
        logger.info("Resuming %s from step %d", cfg.run_dir(), plan.checkpoint.step)
        run = RunFolder.reopen(cfg.run_dir(), plan.checkpoint)
    accelerator.wait_for_everyone()
    return run


@contextmanager
def recording_status(plan: Plan, run: RunFolder) -> Iterator[None]:
    """Mark the run running, with its resolved config; then interrupted or failed if it ends early."""
    write = plan.writes
    try:
        if write:
            resumed = {"resumed_from_step": plan.checkpoint.step} if plan.checkpoint else {}
            run.set_status("running", **resumed)
            run.write_yaml("config.yaml", plan.cfg.resolved().model_dump(mode="json"))
        yield
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


def save_run(
    plan: Plan, run: RunFolder, model: nn.Module, metrics: dict[str, Any], examples: list[dict[str, Any]]
) -> None:
    """Labels, task state, model, final history, metrics, each evaluation example's prediction and the
    report; then the run is finished.

    Every process calls it: under FSDP all take part in gathering the weights the main one saves.
    """
    cfg, task = plan.cfg, plan.task
    weights = plan.accelerator.get_state_dict(model) if sharded(plan.accelerator) else None
    if not plan.writes:
        return
    run.write_json("labels.json", task.names)
    run.write_json("task.json", task.state())
    save_trained(plan, run, model, weights)
    steps = metrics["training"]["steps"]
    for name in ("validation", "test"):
        if name in metrics:
            run.append_history({"split": name, "final": True, "step": steps, **scalars(metrics[name])})
    run.write_json("metrics.json", metrics)
    write_atomic(run.path / PREDICTIONS, "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in examples))
    explain_errors(plan, run, examples)
    write_report(run.path)
    if (run.path / "model").is_dir():
        # Inside model/, where the Hub looks for it when the folder is pushed.
        write_atomic(run.path / "model" / "README.md", model_card.render(cfg, task.info, metrics, task.names))
    run.set_status("finished")
    if not cfg.training.keep_checkpoints:
        shutil.rmtree(run.checkpoints, ignore_errors=True)


def explain_errors(plan: Plan, run: RunFolder, examples: list[dict[str, Any]]) -> None:
    """explanations.json: the worst validation errors explained (report.explained_errors of them), from the
    saved model as `tunesmith explain` loads it. One process only: under several, the main one would run
    the model's backward alone."""
    count, info = plan.cfg.report.explained_errors, plan.task.info
    (run.path / EXPLANATIONS).unlink(missing_ok=True)
    if not count or info.token_level or plan.accelerator.num_processes > 1:
        return
    chosen = worst_errors(info.target, examples, count)
    if not chosen:
        return
    from tunesmith.evaluate.explain import explain
    from tunesmith.predictor import Predictor

    predictor = Predictor.from_run(run.path, device=plan.accelerator.device)
    found = []
    for record in chosen:
        explanation = explain(predictor, record["text"], record.get("text_pair")).as_dict()
        found.append({**explanation, "split": record["split"], "line": record.get("line"), "gold": record["gold"]})
    write_atomic(run.path / EXPLANATIONS, json.dumps(found, indent=1, ensure_ascii=False) + "\n")


def save_trained(plan: Plan, run: RunFolder, model: nn.Module, weights: dict[str, torch.Tensor] | None = None) -> None:
    """adapter/ for adapter strategies; model/ in plain transformers format whenever the weights allow it.

    `weights`: the whole state dict, gathered from the shards under FSDP; None: the model's own.
    """
    cfg, strategy, tokenizer = plan.cfg, plan.strategy, plan.tokenizer
    if strategy.saved_as != "model":

        def write(folder: Path) -> None:
            write_adapter(strategy, cfg, model, folder)
            tokenizer.save_pretrained(folder)

        run.save_folder("adapter", write)
    if mergeable(cfg):
        run.save_model(for_plain_transformers(cfg, model), tokenizer, state_dict=weights)
