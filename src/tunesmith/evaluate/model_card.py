"""model/README.md: a Hugging Face model card, so that a pushed model shows what it measured.

The YAML metadata is huggingface_hub's own (`ModelCardData` with `EvalResult`s, which it
writes as `model-index`), so that the Hub reads it as it reads any card; the figures are
those of metrics.json. The licence is a placeholder for the owner to set: tunesmith cannot
know the terms of the data a model was trained on.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunesmith.config import RunConfig
from tunesmith.evaluate.report import metrics_table

if TYPE_CHECKING:
    from tunesmith.tasks import TaskInfo

# The Hub's pipeline tag and task name per tunesmith task.
PIPELINES = {
    "classification": ("text-classification", "Text Classification"),
    "regression": ("text-classification", "Text Regression"),
    "multilabel": ("text-classification", "Multi-label Text Classification"),
    "ner": ("token-classification", "Named Entity Recognition"),
    "causal": ("text-generation", "Text Generation"),
}
# The hub ids of the bundled backbones.
BASE_MODELS = {"minilm": "sentence-transformers/all-MiniLM-L6-v2"}
# metrics.json keys the card reports, per task, in this order (the first is the headline).
CARD_METRICS = {
    "classification": ["accuracy", "f1_macro", "f1", "mcc"],
    "regression": ["pearson", "spearman", "mse", "mae"],
    "multilabel": ["f1_micro", "f1_macro", "subset_accuracy"],
    "ner": ["f1", "precision", "recall", "accuracy"],
    "causal": ["exact_match", "rouge_l", "perplexity", "loss"],
}
LICENSE_PLACEHOLDER = "other"


def base_model(model: str) -> str | None:
    """A hub id for the card's base_model; None for a local folder (the Hub knows nothing of it)."""
    if model in BASE_MODELS:
        return BASE_MODELS[model]
    return None if Path(model).expanduser().exists() else model


def dataset_name(cfg: RunConfig) -> str:
    """A readable name for the training data: its folder for a file named train.*, else the file's stem."""
    train = cfg.data.train
    return train.parent.name if train.stem in {"train", "data"} and train.parent.name else train.stem


def card_data(cfg: RunConfig, metrics: dict[str, Any]) -> Any:
    from huggingface_hub import EvalResult, ModelCardData

    pipeline, task_name = PIPELINES[cfg.task]
    dataset = dataset_name(cfg)
    results = []
    for split in ("validation", "test"):
        for key in CARD_METRICS[cfg.task]:
            value = metrics.get(split, {}).get(key)
            if isinstance(value, (int, float)):
                results.append(
                    EvalResult(
                        task_type=pipeline,
                        task_name=task_name,
                        dataset_type=dataset,
                        dataset_name=dataset,
                        dataset_split=split,
                        metric_type=key,
                        metric_name=key,
                        metric_value=float(value),
                    )
                )
    return ModelCardData(
        model_name=cfg.run_name(),
        base_model=base_model(cfg.model),
        library_name="transformers",
        license=LICENSE_PLACEHOLDER,
        pipeline_tag=pipeline,
        datasets=[dataset],
        tags=["tunesmith", cfg.task, cfg.strategy],
        metrics=[key for key in CARD_METRICS[cfg.task] if any(r.metric_type == key for r in results)],
        eval_results=results or None,
    )


def render(cfg: RunConfig, task: TaskInfo, metrics: dict[str, Any], names: list[str]) -> str:
    """The card's text: YAML metadata, then what the model is, its scores, how it was trained, how to use it."""
    training, settings = metrics["training"], cfg.training
    data = card_data(cfg, metrics)
    base = data.base_model or f"the local model `{cfg.model}`"
    if cfg.continual.from_run is not None:
        # The weights come from that run, itself fine-tuned from `base`; its task was scored before and after.
        base += f" (by way of the fine-tuned run `{cfg.continual.from_run.name}`)"
    label_line = task.labels_summary.format(count=len(names))
    shown_names = ", ".join(f"`{name}`" for name in names[:30]) + (" ..." if len(names) > 30 else "")
    head = "AutoModelForTokenClassification" if task.token_level else "AutoModelForSequenceClassification"
    body = [
        f"# {cfg.run_name()}",
        "",
        f"{base} fine-tuned for {cfg.task} ({label_line}) on `{dataset_name(cfg)}` with "
        f"tunesmith (strategy `{cfg.strategy}`).",
        "",
        "## Results",
        "",
        metrics_table({split: metrics[split] for split in ("validation", "test") if split in metrics}),
        "",
        "## Training",
        "",
        f"- data: `{cfg.data.train.name}` ({training['examples'].get('train', 0):,} training examples"
        + "".join(f", {count:,} {split}" for split, count in training["examples"].items() if split != "train")
        + ")",
        f"- labels: {shown_names}",
        f"- {training['epochs']} epochs, {training['steps']} steps, batch size {settings.batch_size}, "
        f"learning rate {settings.learning_rate:g}, max length {settings.max_length}, seed {settings.seed}",
        f"- {training['trainable_parameters']:,} of {training['total_parameters']:,} parameters trained; "
        f"{training['train_time_s']:.0f} s on {training['device']}",
        "",
        "## Use",
        "",
        "```python",
        f"from transformers import AutoTokenizer, {head}",
        "",
        'tokenizer = AutoTokenizer.from_pretrained("path/to/model")',
        f'model = {head}.from_pretrained("path/to/model")',
        "```",
        "",
        'or `tunesmith predict RUN_DIR --text "..."` with the whole run folder.',
        "",
        "## Licence and limitations",
        "",
        f"The licence (`license: {LICENSE_PLACEHOLDER}` above) is a placeholder: set it to the terms of the base "
        "model and of the training data. The scores above are on the splits named; they say little about text "
        "unlike it.",
    ]
    return f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body) + "\n"
