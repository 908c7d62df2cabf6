"""The pretrained model before fine-tuning, as baselines: what the backbone already knows.

- `probe`: a linear probe on frozen features. The backbone embeds each text (mean pooling over the
  attention mask, unit length: sentence-transformers' pooling, fewshot/encoder.py) and scikit-learn
  fits a logistic regression (classification) or a ridge regression (regression) on them, after
  standard scaling. A pair is u, v, |u - v|, u * v (Sentence-BERT's features) and cos(u, v).
- `zero_shot`: for a sentence encoder on single-text classification, each text gets the label whose
  prompt embedding is closest (fewshot/zero_shot.py, with the config's `zero_shot` templates and
  descriptions). Labels named by numbers only ("0", "1") say nothing to compare with, so get none.
  On pair regression (similarity) it is the cosine of the two embeddings, put on the target's scale
  by a least-squares line fitted on the training sample (which leaves Pearson and Spearman as the
  cosine's own): how Sentence-BERT is scored on STS.

Both are fitted and scored on the same splits and with the task's own metrics as the run, so the
numbers compare one to one; the probe sees at most `rows` seeded training rows, since every row
costs a forward pass of the backbone.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import datasets

    from tunesmith.config import ZeroShotOptions
    from tunesmith.fewshot.encoder import SentenceEncoder
    from tunesmith.tasks.protocol import Task

logger = logging.getLogger(__name__)

PROBE, ZERO_SHOT = "probe", "zero_shot"
# The ridge strengths the regression probe chooses among.
ALPHAS = tuple(float(a) for a in np.logspace(-1, 5, 13))
# Files that make a folder a sentence-transformers model, i.e. one trained so its pooled embeddings compare.
SENTENCE_MARKERS = ("modules.json", "config_sentence_transformers.json")


def is_sentence_encoder(backbone: str) -> bool:
    """Whether `backbone` (a resolved name: a folder or a hub id) is a sentence-transformers model."""
    folder = Path(backbone)
    if folder.is_dir():
        return any((folder / marker).is_file() for marker in SENTENCE_MARKERS)
    from huggingface_hub import try_to_load_from_cache

    return any(isinstance(try_to_load_from_cache(backbone, marker), str) for marker in SENTENCE_MARKERS)


def measure(
    task: Task,
    splits: dict[str, datasets.Dataset],
    evaluated: tuple[str, ...],
    encoder: SentenceEncoder,
    wanted: set[str],
    rows: int,
    seed: int,
    zero_shot: ZeroShotOptions | None = None,
) -> dict[str, Any]:
    """{baseline: {split: scalar metrics}} of the `wanted` ones of probe and zero_shot that apply, plus
    `probe_rows` and `probe_seconds`; {} when none applies."""
    from tunesmith.train.loop import scalars

    kind = task.info.target
    pairs = "text_pair" in splits["train"].column_names
    names = list(getattr(task, "names", []))
    zero = ZERO_SHOT in wanted and (
        (kind == "class" and zero_shot is not None and not pairs and _named(names)) or (kind == "number" and pairs)
    )
    if kind not in {"class", "number"} or not (PROBE in wanted or zero):
        return {}
    started = time.perf_counter()
    train = splits["train"]
    if len(train) > rows:
        train = train.shuffle(seed=seed).select(range(rows))
    results: dict[str, Any] = {}
    probe, head, line = None, None, None
    y_train = np.asarray(train["labels"])
    if PROBE in wanted or (zero and kind == "number"):
        train_features = features(encoder, train)
        if PROBE in wanted:
            probe = _fit(kind, train_features, y_train, seed)
            results[PROBE] = {}
    if zero and kind == "class":
        from tunesmith.fewshot.zero_shot import zero_shot_head

        assert zero_shot is not None
        head = zero_shot_head(encoder, names, zero_shot.descriptions, zero_shot.templates, zero_shot.temperature)
        results[ZERO_SHOT] = {}
    elif zero:
        # The cosine is the last feature of a pair; slope and intercept map it onto the targets.
        line = np.polyfit(train_features[:, -1], y_train.astype(np.float64), 1)
        if line[0] < 0:
            # More similar must not mean less: a falling line would turn a wrong encoder's cosine into a right one.
            line = np.array([0.0, float(y_train.mean())])
        results[ZERO_SHOT] = {}
    for name in evaluated:
        if name not in splits:
            continue
        split = splits[name]
        targets = np.asarray(split["labels"])
        embedded = features(encoder, split)
        if probe is not None:
            predicted = probe.predict(embedded).astype(targets.dtype)
            results[PROBE][name] = scalars(task.compute_metrics([predicted], [targets]))
        if head is not None:
            # Single texts only: the features are the embeddings themselves.
            predicted = head.logits(embedded).argmax(axis=-1).astype(targets.dtype)
            results[ZERO_SHOT][name] = scalars(task.compute_metrics([predicted], [targets]))
        if line is not None:
            predicted = np.polyval(line, embedded[:, -1]).astype(targets.dtype)
            results[ZERO_SHOT][name] = scalars(task.compute_metrics([predicted], [targets]))
    seconds = time.perf_counter() - started
    logger.info("Pretrained-model baselines on %d training rows in %.1f s", len(train), seconds)
    return {**results, "probe_rows": len(train), "probe_seconds": round(seconds, 2)}


def features(encoder: SentenceEncoder, split: datasets.Dataset) -> np.ndarray:
    """The frozen embeddings of a split's texts; a pair's u, v, |u - v|, u * v and cosine."""
    first = encoder.embed(list(split["text"]))
    if "text_pair" not in split.column_names:
        return first
    second = encoder.embed(list(split["text_pair"]))
    # The embeddings are unit length, so the row-wise dot product is the cosine.
    cosine = (first * second).sum(axis=1, keepdims=True)
    return np.hstack([first, second, np.abs(first - second), first * second, cosine])


def _named(names: list[str]) -> bool:
    """Whether the labels have names a prompt can say (not "0", "1", ...)."""
    return len(names) >= 2 and not all(name.strip().lstrip("-").isdigit() for name in names)


def _fit(kind: str, x: np.ndarray, y: np.ndarray, seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression, RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "class" and len(np.unique(y)) < 2:
        from tunesmith.evaluate.baselines import _Constant

        return _Constant(y[0])
    # A pair has 4 x hidden + 1 features, as many as a small sample has rows: the ridge's strength is chosen
    # by leave-one-out on the sample (RidgeCV's closed form, no refits), or a fixed one overfits.
    model = LogisticRegression(max_iter=1000, random_state=seed) if kind == "class" else RidgeCV(alphas=ALPHAS)
    # Embedding coordinates are small (unit-length rows); scaling puts the regularisation on an even footing.
    return make_pipeline(StandardScaler(), model).fit(x, y)
