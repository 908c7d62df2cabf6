"""A zero-shot or few-shot contrastive run, top to bottom, on the pipeline's own stages.

plan, data and doctor are `recipes/finetune.py`'s; what differs is the model: a sentence encoder
(tuned on pairs for `method: contrastive`, as is for `zero_shot`) and a linear head (a logistic
regression on the embeddings, or the label prompts' embeddings). The run folder is any run's:
config.yaml, status.json, labels.json, metrics.json, history.jsonl, report.md, the doctor's files,
model/ (the tuned encoder, loadable by transformers' AutoModel) and head.safetensors.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

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


def sentence_run(cfg: RunConfig, overwrite: bool = False) -> Run:
    """Build, evaluate and save a `zero_shot` or `contrastive` run; returns it finished."""
    from tunesmith.recipes.finetune import Run

    with quiet_libraries():
        plan = plan_run(cfg, overwrite)
        loaded = load_data(plan)
        splits = encode_data(plan, loaded)
        findings = examine_data(plan, loaded)
        run = open_run_folder(plan)
        with recording_status(plan, run):
            save_findings(plan, run, findings)
            encoder = SentenceEncoder.from_backbone(plan.backbone, plan.cfg.training.max_length)
            started = time.perf_counter()
            head, summary = build_head(plan, encoder, splits["train"])
            train_time = time.perf_counter() - started
            metrics = evaluate_splits(plan, encoder, head, splits)
            metrics["training"] = training_figures(plan, encoder, splits, summary, train_time)
            save_sentence_run(plan, run, encoder, head, summary, metrics)
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


def evaluate_splits(
    plan: Plan, encoder: SentenceEncoder, head: LinearHead, splits: dict[str, datasets.Dataset]
) -> dict[str, Any]:
    batch = plan.cfg.training.eval_batch_size
    return {
        name: score(
            plan.task,
            softmax(head.logits(encoder.embed(list(splits[name]["text"]), batch))),
            np.asarray(splits[name]["labels"]),
        )
        for name in EVALUATION_SPLITS
        if name in splits
    }


def training_figures(
    plan: Plan,
    encoder: SentenceEncoder,
    splits: dict[str, datasets.Dataset],
    summary: ContrastiveSummary | None,
    train_time: float,
) -> dict[str, Any]:
    from tunesmith.train.measure import peak_memory_mb

    total = sum(parameter.numel() for parameter in encoder.parameters())
    steps = summary.steps if summary else 0
    trained = summary is not None
    return {
        "method": plan.cfg.method,
        "steps": steps,
        "epochs": plan.cfg.contrastive.epochs if trained else 0,
        # Encoder tuning and the head's fit (zero-shot: embedding the label prompts).
        "train_time_s": round(train_time, 3),
        "encoder_time_s": round(summary.train_time_s, 3) if summary else 0.0,
        "samples_per_s": round(steps * plan.cfg.contrastive.batch_size / summary.train_time_s, 2) if trained else 0.0,
        "peak_memory_mb": round(peak_memory_mb(plan.accelerator.device), 1),
        "trainable_parameters": total + len(plan.task.names) * (encoder.dimension + 1) if trained else 0,
        "total_parameters": total + len(plan.task.names) * (encoder.dimension + 1),
        "examples": {name: len(split) for name, split in splits.items()},
        "truncated": {name: count_truncated(encoder, list(split["text"])) for name, split in splits.items()},
        "train_examples_per_class": per_class(splits["train"], plan.task.names),
        "device": "cpu",
    }


def count_truncated(encoder: SentenceEncoder, texts: list[str]) -> int:
    """Texts of more tokens than max_length, which the encoder reads cut."""
    lengths = encoder.tokenizer(texts, truncation=False, return_length=True)["length"]
    return sum(length > encoder.max_length for length in lengths)


def per_class(train: datasets.Dataset, names: list[str]) -> dict[str, int]:
    counts = np.bincount(np.asarray(train["labels"]), minlength=len(names))
    return {name: int(count) for name, count in zip(names, counts, strict=True)}


def save_sentence_run(
    plan: Plan,
    run: RunFolder,
    encoder: SentenceEncoder,
    head: LinearHead,
    summary: ContrastiveSummary | None,
    metrics: dict[str, Any],
) -> None:
    from tunesmith.evaluate.rebuild import write_report
    from tunesmith.train.loop import scalars

    task = plan.task
    run.write_json("labels.json", task.names)
    run.write_json("task.json", task.state())
    if summary is not None:
        run.save_folder(ENCODER_FOLDER, encoder.save)
        for step, (loss, rate) in enumerate(zip(summary.losses, summary.learning_rates, strict=True), start=1):
            run.append_history({"step": step, "loss": loss, "learning_rate": rate})
    head.save(run.path)
    for name in EVALUATION_SPLITS:
        if name in metrics:
            run.append_history(
                {"split": name, "final": True, "step": metrics["training"]["steps"], **scalars(metrics[name])}
            )
    run.write_json("metrics.json", metrics)
    write_report(run.path)
    run.set_status("finished")
