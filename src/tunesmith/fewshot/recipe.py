"""A zero-shot, few-shot contrastive or cloze (PET) run, top to bottom, on the pipeline's own stages.

plan, data and doctor are `recipes/finetune.py`'s; what differs is the model: a sentence encoder
(tuned on pairs for `method: contrastive`, as is for `zero_shot`) and a linear head (a logistic
regression on the embeddings, or the label prompts' embeddings). The run folder is any run's:
config.yaml, status.json, labels.json, metrics.json, history.jsonl, report.md, the doctor's files,
model/ (the tuned encoder, loadable by transformers' AutoModel) and head.safetensors.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from tunesmith.errors import UserError
from tunesmith.fewshot.cloze import ClozeClassifier, ClozeSummary, fit_cloze
from tunesmith.fewshot.contrastive import ContrastiveSettings, ContrastiveSummary, fit_encoder
from tunesmith.fewshot.encoder import SentenceEncoder
from tunesmith.fewshot.head import LinearHead, softmax
from tunesmith.fewshot.predictor import ENCODER_FOLDER, score
from tunesmith.fewshot.zero_shot import zero_shot_head
from tunesmith.quiet import quiet_libraries
from tunesmith.stages.data import EVALUATION_SPLITS, encode_data, load_data
from tunesmith.stages.doctor import examine_data, save_findings
from tunesmith.stages.plan import plan_run
from tunesmith.stages.save import open_run_folder, recording_status

if TYPE_CHECKING:
    import datasets

    from tunesmith.config import RunConfig
    from tunesmith.recipes.finetune import Run
    from tunesmith.runs import RunFolder
    from tunesmith.stages.plan import Plan


def sentence_run(cfg: RunConfig, overwrite: bool = False, resume: bool = False) -> Run:
    """Build, evaluate and save a `zero_shot`, `contrastive` or `cloze` run; returns it finished."""
    from tunesmith.recipes.finetune import Run

    if resume:
        # These runs take seconds to minutes and write no checkpoints: there is nothing to continue from.
        raise UserError(f"--resume: a method {cfg.method} run keeps no checkpoints. Run it again without --resume.")
    with quiet_libraries():
        plan = plan_run(cfg, overwrite)
        loaded = load_data(plan)
        splits = encode_data(plan, loaded)
        findings = examine_data(plan, loaded)
        run = open_run_folder(plan)
        with recording_status(plan, run):
            save_findings(plan, run, findings)
            if plan.cfg.method == "cloze":
                model, summary, train_time = train_cloze(plan, splits["train"])
                probabilities, head = model.probabilities, None
            else:
                model = SentenceEncoder.from_backbone(plan.backbone, plan.cfg.training.max_length)
                started = time.perf_counter()
                head, summary = build_head(plan, model, splits["train"])
                train_time = time.perf_counter() - started

                def probabilities(texts: list[str], batch: int) -> np.ndarray:
                    return softmax(head.logits(model.embed(texts, batch)))

            metrics = evaluate_splits(plan, probabilities, splits)
            metrics["training"] = training_figures(plan, model, splits, summary, train_time)
            save_sentence_run(plan, run, model, head, summary, metrics)
    return Run(run.path, plan.cfg, metrics)


def build_head(
    plan: Plan, encoder: SentenceEncoder, train: datasets.Dataset
) -> tuple[LinearHead, ContrastiveSummary | None]:
    cfg, names = plan.cfg, plan.task.names
    if cfg.method == "zero_shot":
        options = cfg.zero_shot
        return zero_shot_head(encoder, names, options.descriptions, options.templates, options.temperature), None
    options = cfg.contrastive
    settings = ContrastiveSettings(
        epochs=options.epochs,
        batch_size=options.batch_size,
        learning_rate=options.learning_rate,
        warmup_ratio=options.warmup_ratio,
        max_steps=options.max_steps,
        seed=cfg.training.seed,
    )
    texts, targets = list(train["text"]), list(train["labels"])
    summary = fit_encoder(encoder, texts, targets, settings)
    head = LinearHead.fit(encoder.embed(texts), np.asarray(targets), len(names), options.head_c, cfg.training.seed)
    return head, summary


def train_cloze(plan: Plan, train: datasets.Dataset) -> tuple[ClozeClassifier, ClozeSummary, float]:
    """PET's fine-tuning: the masked-LM model learns to put each label's word at the mask."""
    cfg = plan.cfg
    training, words = cfg.training, dict(cfg.cloze.verbalizer or {})
    model = ClozeClassifier.from_backbone(
        plan.backbone, cfg.cloze.template, words, plan.task.names, training.max_length
    )
    texts, targets = list(train["text"]), list(train["labels"])
    summary = fit_cloze(
        model,
        texts,
        targets,
        training.epochs,
        training.batch_size,
        training.learning_rate,
        training.warmup_ratio,
        training.seed,
    )
    return model, summary, summary.train_time_s


def evaluate_splits(
    plan: Plan, probabilities: Callable[[list[str], int], np.ndarray], splits: dict[str, datasets.Dataset]
) -> dict[str, Any]:
    batch = plan.cfg.training.eval_batch_size
    return {
        name: score(plan.task, probabilities(list(splits[name]["text"]), batch), np.asarray(splits[name]["labels"]))
        for name in EVALUATION_SPLITS
        if name in splits
    }


def training_figures(
    plan: Plan,
    model: SentenceEncoder | ClozeClassifier,
    splits: dict[str, datasets.Dataset],
    summary: ContrastiveSummary | ClozeSummary | None,
    train_time: float,
) -> dict[str, Any]:
    from tunesmith.train.measure import peak_memory_mb

    cfg = plan.cfg
    total = sum(parameter.numel() for parameter in model.parameters())
    if isinstance(model, SentenceEncoder):
        # The linear head: a row and a bias per label.
        total += len(plan.task.names) * (model.dimension + 1)
    steps = summary.steps if summary else 0
    trained = summary is not None
    epochs, batch = (
        (cfg.training.epochs, cfg.training.batch_size)
        if cfg.method == "cloze"
        else (cfg.contrastive.epochs, cfg.contrastive.batch_size)
    )
    return {
        "method": cfg.method,
        "steps": steps,
        "epochs": epochs if trained else 0,
        # Tuning and the head's fit (zero-shot: embedding the label prompts).
        "train_time_s": round(train_time, 3),
        "encoder_time_s": round(summary.train_time_s, 3) if summary else 0.0,
        "samples_per_s": round(steps * batch / summary.train_time_s, 2) if trained and summary.train_time_s else 0.0,
        "peak_memory_mb": round(peak_memory_mb(plan.accelerator.device), 1),
        "trainable_parameters": total if trained else 0,
        "total_parameters": total,
        "examples": {name: len(split) for name, split in splits.items()},
        "truncated": {name: count_truncated(model, list(split["text"])) for name, split in splits.items()},
        "train_examples_per_class": per_class(splits["train"], plan.task.names),
        "device": "cpu",
    }


def count_truncated(model: SentenceEncoder | ClozeClassifier, texts: list[str]) -> int:
    """Texts of more tokens than max_length, which the model reads cut."""
    lengths = model.tokenizer(texts, truncation=False, return_length=True)["length"]
    return sum(length > model.max_length for length in lengths)


def per_class(train: datasets.Dataset, names: list[str]) -> dict[str, int]:
    counts = np.bincount(np.asarray(train["labels"]), minlength=len(names))
    return {name: int(count) for name, count in zip(names, counts, strict=True)}


def save_sentence_run(
    plan: Plan,
    run: RunFolder,
    model: SentenceEncoder | ClozeClassifier,
    head: LinearHead | None,
    summary: ContrastiveSummary | ClozeSummary | None,
    metrics: dict[str, Any],
) -> None:
    from tunesmith.evaluate.rebuild import write_report
    from tunesmith.train.loop import scalars

    task = plan.task
    run.write_json("labels.json", task.names)
    run.write_json("task.json", task.state())
    if summary is not None:
        run.save_folder(ENCODER_FOLDER, model.save)
        for step, (loss, rate) in enumerate(zip(summary.losses, summary.learning_rates, strict=True), start=1):
            run.append_history({"step": step, "loss": loss, "learning_rate": rate})
    if head is not None:
        head.save(run.path)
    for name in EVALUATION_SPLITS:
        if name in metrics:
            run.append_history(
                {"split": name, "final": True, "step": metrics["training"]["steps"], **scalars(metrics[name])}
            )
    run.write_json("metrics.json", metrics)
    write_report(run.path)
    run.set_status("finished")
