"""Pretrain a model on raw text (masked- or causal-LM), or continue a BERT's masked-LM training on a new
domain's text: the whole path of one run, top to bottom.

As in fine-tuning, every check (config, model, tokenizer, folder, corpus) comes before the run
folder is opened, and the loop, checkpoints, exact resume, signals and history are train/loop.py's.
The run folder ends with model/ (a plain transformers folder: fine-tune it by naming it as the
model of a run), metrics.json (held-out loss, perplexity, accuracy, tokens/s) and pretraining_curve.png.
"""

from __future__ import annotations

import logging
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import yaml
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch import nn
from transformers import PreTrainedTokenizerBase

from tunesmith.config import validate_schema
from tunesmith.errors import UserError
from tunesmith.models.backbones import check_loadable, load_tokenizer, position_limit
from tunesmith.models.loading import load_config
from tunesmith.models.loading import load_tokenizer as load_tokenizer_folder
from tunesmith.pretrain import blocks, curve
from tunesmith.pretrain.config import PretrainConfig, load_pretrain_config
from tunesmith.pretrain.corpus import read_corpus
from tunesmith.pretrain.models import (
    check_tokenizer_fits,
    continued_encoder,
    decoder_from_scratch,
    encoder_from_scratch,
    save_pretrained_model,
)
from tunesmith.pretrain.objectives import CausalLanguageModeling, MaskedLanguageModeling, perplexity
from tunesmith.pretrain.vocabulary import NewToken, add_tokens, new_tokens
from tunesmith.quiet import quiet_libraries
from tunesmith.runs import RunFolder, resume_point
from tunesmith.stages.save import open_run_folder, recording_status
from tunesmith.train.accelerator import make_accelerator
from tunesmith.train.batching import eval_loader
from tunesmith.train.checkpoints import Checkpoint
from tunesmith.train.loop import TrainSummary, evaluate, fit, scalars
from tunesmith.train.measure import peak_memory_mb
from tunesmith.train.precision import resolve_precision
from tunesmith.train.signals import GracefulStop

logger = logging.getLogger(__name__)
# The seed of the validation set's masks, apart from training's.
VALIDATION_MASK_SEED = 1234


@dataclass
class PretrainPlan:
    cfg: PretrainConfig
    objective: MaskedLanguageModeling | CausalLanguageModeling
    accelerator: Accelerator
    tokenizer: PreTrainedTokenizerBase
    # The model to continue (resolved path or hub id); None: from scratch.
    model: str | None
    overwrite: bool = False
    checkpoint: Checkpoint | None = None
    skipped: list[str] = field(default_factory=list)

    @property
    def writes(self) -> bool:
        return self.accelerator.is_main_process


@dataclass
class Corpus:
    train: list[str]
    validation: list[str]
    added_tokens: list[NewToken]


@dataclass
class PretrainRun:
    path: Path
    config: PretrainConfig
    metrics: dict[str, Any]


def pretrain(config: PretrainConfig | dict | str | Path, overwrite: bool = False, resume: bool = False) -> PretrainRun:
    with quiet_libraries():
        plan = plan_pretraining(as_pretrain_config(config), overwrite, resume)
        corpus = read_corpora(plan)
        run = open_run_folder(plan)
        with GracefulStop() as stop, recording_status(plan, run):
            train_set, validation_set = examples(plan, corpus)
            model = build_model(plan, corpus)
            model, summary = train(plan, model, train_set, validation_set, run, stop)
            metrics = final_metrics(plan, model, validation_set, summary)
            save(plan, run, model, metrics)
        plan.accelerator.wait_for_everyone()
    return PretrainRun(run.path, plan.cfg, metrics)


def as_pretrain_config(config: PretrainConfig | dict | str | Path) -> PretrainConfig:
    if isinstance(config, PretrainConfig):
        return config
    if isinstance(config, dict):
        return validate_schema(PretrainConfig, config, "the config dict")
    return load_pretrain_config(Path(config))


def plan_pretraining(cfg: PretrainConfig, overwrite: bool, resume: bool) -> PretrainPlan:
    """Every check but the corpus's, before anything is written."""
    resolved = check_loadable(cfg.model) if cfg.model is not None else None
    if resolved is not None:
        limit = position_limit(load_config(resolved, "backbone"))
        if limit is not None and cfg.training.max_length > limit:
            raise UserError(
                f"training.max_length {cfg.training.max_length} is longer than model {cfg.model!r} can read "
                f"({limit} positions). Set training.max_length to {limit} or less."
            )
    tokenizer = pretraining_tokenizer(cfg, resolved)
    check_tokenizer_fits(cfg, tokenizer, cfg.tokenizer or str(cfg.model))
    accelerator = make_accelerator(
        cfg.training.gradient_accumulation_steps,
        mixed_precision=resolve_precision(cfg.training.mixed_precision),
        compile=cfg.training.compile,
    )
    checkpoint, skipped = check_run_folder(cfg, overwrite, resume)
    accelerator.wait_for_everyone()
    objective = MaskedLanguageModeling(cfg.mlm) if cfg.objective == "mlm" else CausalLanguageModeling()
    return PretrainPlan(cfg, objective, accelerator, tokenizer, resolved, overwrite, checkpoint, skipped)


def pretraining_tokenizer(cfg: PretrainConfig, resolved: str | None) -> PreTrainedTokenizerBase:
    if cfg.tokenizer is None:
        return load_tokenizer(resolved)
    folder = Path(cfg.tokenizer)
    if not folder.is_dir():
        raise UserError(
            f"tokenizer {cfg.tokenizer} is not a folder. Train one with `tunesmith tokenizer train --files ... "
            "--vocab-size N --output-dir DIR` and name DIR."
        )
    tokenizer = load_tokenizer_folder(folder, "backbone")
    if resolved is not None:
        vocabulary = load_config(resolved, "backbone").vocab_size
        if len(tokenizer) > vocabulary:
            raise UserError(
                f"tokenizer {cfg.tokenizer} has {len(tokenizer)} tokens but model {cfg.model!r} only {vocabulary} "
                "embeddings: drop tokenizer: to use the model's own, or extend it with vocabulary.add_tokens."
            )
    return tokenizer


def check_run_folder(cfg: PretrainConfig, overwrite: bool, resume: bool) -> tuple[Checkpoint | None, list[str]]:
    checkpoint, skipped = resume_point(cfg.run_dir(), overwrite, resume)
    if checkpoint is None:
        RunFolder.check_replaceable(cfg.run_dir(), overwrite)
        return None, skipped
    saved_path = cfg.run_dir() / "config.yaml"
    try:
        saved = yaml.safe_load(saved_path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        saved = None
    if saved != yaml.safe_load(yaml.safe_dump(cfg.resolved().model_dump(mode="json"))):
        raise UserError(
            f"{cfg.run_dir()} holds a checkpoint of a pretraining run with other settings. Resume with the "
            "settings it started with, or pass --overwrite to start a new run there."
        )
    return checkpoint, skipped


def read_corpora(plan: PretrainPlan) -> Corpus:
    """The documents, the held-out ones apart; and, with vocabulary.add_tokens, the tokenizer extended."""
    cfg = plan.cfg
    train = read_corpus(cfg.data.train, cfg.data)
    if cfg.data.validation:
        validation = read_corpus(cfg.data.validation, cfg.data)
    else:
        held_out = max(1, round(len(train) * cfg.data.validation_split))
        if len(train) < 2:
            raise UserError(
                f"The corpus ({', '.join(map(str, cfg.data.train))}) holds {len(train)} document: too few to hold "
                "any out for validation. Add text, or name held-out text as data.validation."
            )
        # The last documents: a seeded shuffle would scatter a document's neighbours across both sides.
        train, validation = train[:-held_out], train[-held_out:]
    added: list[NewToken] = []
    if cfg.vocabulary.add_tokens:
        added = new_tokens(train, plan.tokenizer, cfg.vocabulary.add_tokens, cfg.vocabulary.min_frequency)
        add_tokens(plan.tokenizer, added)
        logger.info("Added %d tokens to the vocabulary, e.g. %s", len(added), " ".join(t.text for t in added[:10]))
    return Corpus(train, validation, added)


def examples(plan: PretrainPlan, corpus: Corpus) -> tuple[datasets.Dataset, datasets.Dataset]:
    cfg, tokenizer = plan.cfg, plan.tokenizer
    size, causal = cfg.training.max_length, cfg.objective == "causal"

    def build(documents: list[str], what: str) -> datasets.Dataset:
        if cfg.data.packing:
            return blocks.packed_blocks(documents, tokenizer, size, causal, what)
        return blocks.line_examples(documents, tokenizer, size)

    held_out = "The held-out text (data.validation)" if cfg.data.validation else (
        f"The held-out text (the last {len(corpus.validation)} documents, data.validation_split)")  # fmt: skip
    train_set, validation_set = build(corpus.train, "The corpus"), build(corpus.validation, held_out)
    if isinstance(plan.objective, MaskedLanguageModeling):
        validation_set = plan.objective.fixed_masks(validation_set, tokenizer, VALIDATION_MASK_SEED)
    logger.info(
        "%d training examples (%d tokens), %d held out", len(train_set), sum(train_set["length"]), len(validation_set)
    )
    return train_set, validation_set


def build_model(plan: PretrainPlan, corpus: Corpus) -> nn.Module:
    cfg = plan.cfg
    # Every generator from the seed: the initial weights, then the masks and dropout of training.
    set_seed(cfg.training.seed)
    if cfg.objective == "causal":
        return decoder_from_scratch(cfg.architecture, plan.tokenizer)
    if plan.model is None:
        return encoder_from_scratch(cfg.architecture, plan.tokenizer)
    return continued_encoder(plan.model, str(cfg.model), corpus.added_tokens)


def train(
    plan: PretrainPlan, model: nn.Module, train_set: datasets.Dataset, validation_set: datasets.Dataset,
    run: RunFolder, stop: GracefulStop,
) -> tuple[nn.Module, TrainSummary]:  # fmt: skip
    write = run.append_history if plan.writes else (lambda record: None)

    def log(record: dict[str, Any]) -> None:
        if record.get("split") == "validation":
            record["perplexity"] = perplexity(record["loss"])
        write(record)

    with stop.deferred():
        return fit(
            model, train_set, validation_set, plan.tokenizer, plan.objective, plan.cfg.training, plan.accelerator,
            log=log, checkpoint_dir=run.checkpoints, resume=plan.checkpoint, stop=stop,
        )  # fmt: skip


def final_metrics(
    plan: PretrainPlan, model: nn.Module, validation_set: datasets.Dataset, summary: TrainSummary
) -> dict[str, Any]:
    cfg, accelerator = plan.cfg, plan.accelerator
    collate = plan.objective.collator(plan.tokenizer)
    loader = accelerator.prepare(eval_loader(validation_set, collate, cfg.training.eval_batch_size))
    held_out = scalars(evaluate(model, loader, accelerator, plan.objective))
    held_out["perplexity"] = perplexity(held_out["loss"])
    return {
        "objective": cfg.objective,
        "validation": held_out,
        "training": {
            "steps": summary.steps,
            "epochs": summary.epochs,
            "train_time_s": round(summary.train_time_s, 3),
            "eval_time_s": round(summary.eval_time_s, 3),
            "tokens": summary.train_tokens,
            "tokens_per_s": round(summary.tokens_per_s, 1),
            "peak_memory_mb": round(peak_memory_mb(accelerator.device), 1),
            "parameters": sum(p.numel() for p in model.parameters()),
            "examples": {"train": summary.train_samples, "validation": len(validation_set)},
            "max_time_s": cfg.training.max_time,
        },
    }


def save(plan: PretrainPlan, run: RunFolder, model: nn.Module, metrics: dict[str, Any]) -> None:
    if not plan.writes:
        return
    model = plan.accelerator.unwrap_model(model)
    run.save_folder("model", lambda folder: save_pretrained_model(model, plan.tokenizer, folder))
    run.append_history({"split": "validation", "final": True, "step": metrics["training"]["steps"],
                        **metrics["validation"]})  # fmt: skip
    run.write_json("metrics.json", _finite(metrics))
    curve.plot(run.path / "history.jsonl", run.path / curve.FILE)
    run.set_status("finished")
    if not plan.cfg.training.keep_checkpoints:
        shutil.rmtree(run.checkpoints, ignore_errors=True)


def _finite(value: Any) -> Any:
    """JSON has no infinity: a perplexity that overflowed is written as null."""
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    return None if isinstance(value, float) and not math.isfinite(value) else value
