"""Predict and evaluate with a zero-shot or contrastive run: sentence encoder, then linear head.

It answers as `tunesmith.predictor.Predictor` does (`predict`, `evaluate`, `names`), so that the CLI,
the Python API and `select` take these runs like any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.config import RunConfig
from tunesmith.data.splits import check_pairs, check_texts
from tunesmith.fewshot.encoder import SentenceEncoder
from tunesmith.fewshot.head import LinearHead, softmax
from tunesmith.tasks.protocol import Task

# A contrastive run's tuned encoder; a zero-shot run has none and embeds with its backbone.
ENCODER_FOLDER = "model"


class ProbabilityPredictor:
    """predict and evaluate on top of `probabilities`, which each kind of run provides."""

    config: RunConfig
    task: Task

    @property
    def names(self) -> list[str]:
        return self.task.names

    def probabilities(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        raise NotImplementedError

    def predict(
        self, texts: list[str] | str, text_pairs: list[str] | None = None, batch_size: int = 64
    ) -> list[dict[str, Any]]:
        texts = [texts] if isinstance(texts, str) else list(texts)
        check_pairs(self.config.data, texts, text_pairs)
        check_texts(texts, "texts[{}]".format)
        return [as_result(row, self.names) for row in self.probabilities(texts, batch_size)]

    def evaluate(self, path: Path, fmt: str | None = None) -> dict[str, Any]:
        from tunesmith.data.splits import read_labelled

        data_cfg = self.config.data.model_copy(update={"format": fmt or self.config.data.format})
        split = self.task.encode(read_labelled(Path(path), data_cfg), Path(path))
        return score(self.task, self.probabilities(list(split["text"])), np.asarray(split["labels"]))


@dataclass
class SentencePredictor(ProbabilityPredictor):
    encoder: SentenceEncoder
    head: LinearHead
    config: RunConfig
    task: Task

    @classmethod
    def from_run(cls, run_dir: Path, config: RunConfig, task: Task) -> SentencePredictor:
        max_length = config.training.max_length
        folder = run_dir / ENCODER_FOLDER
        if (folder / "config.json").is_file():
            encoder = SentenceEncoder.from_folder(folder, max_length)
        else:
            encoder = SentenceEncoder.from_backbone(config.model, max_length)
        return cls(encoder, LinearHead.load(run_dir), config, task)

    def probabilities(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """(texts, labels) class probabilities."""
        return softmax(self.head.logits(self.encoder.embed(texts, batch_size)))


@dataclass
class ClozePredictor(ProbabilityPredictor):
    """A `method: cloze` run: its masked-LM model reads each text as the cloze it was trained on."""

    classifier: Any
    config: RunConfig
    task: Task

    @classmethod
    def from_run(cls, run_dir: Path, config: RunConfig, task: Task) -> ClozePredictor:
        from tunesmith.fewshot.cloze import ClozeClassifier

        cloze, length = config.cloze, config.training.max_length
        words = dict(cloze.verbalizer or {})
        folder = run_dir / ENCODER_FOLDER
        return cls(ClozeClassifier.from_folder(folder, cloze.template, words, task.names, length), config, task)

    def probabilities(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        return self.classifier.probabilities(texts, batch_size)


def as_result(probabilities: np.ndarray, names: list[str]) -> dict[str, Any]:
    best = int(np.argmax(probabilities))
    return {
        "label": names[best],
        "score": float(probabilities[best]),
        "probabilities": {name: float(p) for name, p in zip(names, probabilities, strict=True)},
    }


def score(task: Task, probabilities: np.ndarray, targets: np.ndarray) -> dict[str, Any]:
    """The classification task's metrics, plus the mean log loss as `loss`."""
    picked = probabilities[np.arange(len(targets)), targets]
    metrics = task.compute_metrics([probabilities.argmax(axis=1)], [targets])
    return {"loss": float(-np.log(np.clip(picked, 1e-12, None)).mean()), **metrics}


def zero_shot_predictor(
    model: str, names: list[str], descriptions: dict[str, str] | None = None, templates: list[str] | None = None
) -> SentencePredictor:
    """A predictor with no run folder: `model`'s embeddings and the labels' prompts (predict --zero-shot)."""
    from tunesmith.fewshot.zero_shot import zero_shot_head
    from tunesmith.tasks.classification import ClassificationTask

    options: dict = {"descriptions": descriptions or None}
    if templates:
        options["templates"] = templates
    config = RunConfig.model_validate(
        {"model": model, "method": "zero_shot", "data": {"train": "-"}, "zero_shot": options}
    )
    encoder = SentenceEncoder.from_backbone(model, config.training.max_length)
    zero = config.zero_shot
    head = zero_shot_head(encoder, names, zero.descriptions, zero.templates, zero.temperature)
    return SentencePredictor(encoder, head, config, ClassificationTask(config, {"names": names}))
