"""Baselines, so that a run's scores are read against something: what a model that learns nothing
(the majority class, the mean target) and a cheap bag-of-n-grams model score on the same splits.

The bag of n-grams is scikit-learn's TF-IDF over character n-grams within words (1 to 4), which
needs no word segmentation and so serves Chinese as it serves English, under a logistic regression
(classification) or a ridge regression (regression). A pair is both sides' vectors side by side
plus their cosine similarity. The scores are the task's own `compute_metrics`, on the same
targets as the run's, so the numbers compare one to one. Tasks whose target is a label set or
tags get none: an all-"O" tagger scores 0 F1, which says nothing.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import datasets

    from tunesmith.tasks.protocol import Task

logger = logging.getLogger(__name__)

# Targets that get baselines (TaskInfo.target), and the names of the baselines in metrics.json.
CONSTANT = {"class": "majority", "number": "mean"}
NGRAMS = "tfidf"
# What `report.baselines` may list: the constant model (majority class or mean target), the n-grams, and the
# pretrained model before fine-tuning (evaluate/probe.py).
NAMES = ("constant", NGRAMS, "probe", "zero_shot")
# How the report names them, per target.
LABELS = {
    "class": {
        "majority": "majority class",
        NGRAMS: "TF-IDF + logistic regression",
        "probe": "frozen backbone + logistic regression (linear probe)",
        "zero_shot": "frozen backbone, zero-shot (label-name similarity)",
    },
    "number": {
        "mean": "mean target",
        NGRAMS: "TF-IDF + ridge regression",
        "probe": "frozen backbone + ridge regression (linear probe)",
        "zero_shot": "frozen backbone, cosine of the pair (zero-shot)",
    },
}
# Ceiling on the vocabulary of n-grams: memory and time stay bounded on large training sets.
MAX_FEATURES = 200_000


def applies(task: Task) -> bool:
    return task.info.target in CONSTANT


def wanted(setting: bool | list[str]) -> set[str]:
    """The baselines `report.baselines` asks for: all of them (true), none (false), or those listed."""
    if isinstance(setting, bool):
        return set(NAMES) if setting else set()
    return set(setting)


def measure(
    task: Task,
    splits: dict[str, datasets.Dataset],
    evaluated: tuple[str, ...],
    rows: int,
    seed: int,
    chosen: set[str] | None = None,
) -> dict[str, Any]:
    """{baseline: {split: scalar metrics}} for the `evaluated` splits, the models fitted on (at most
    `rows` seeded rows of) train; plus `seconds` and the rows fitted on. `chosen`: of "constant" and
    "tfidf", which (both when None)."""
    from tunesmith.train.loop import scalars

    chosen = {"constant", NGRAMS} if chosen is None else chosen & {"constant", NGRAMS}
    if not applies(task) or not chosen:
        return {}
    started = time.perf_counter()
    train = splits["train"]
    if len(train) > rows:
        train = train.shuffle(seed=seed).select(range(rows))
    y_train = np.asarray(train["labels"])
    kind = task.info.target
    constant = _constant(kind, y_train)
    vectorizer, fitted = _fit_ngrams(kind, train, y_train, seed) if NGRAMS in chosen else (None, None)
    results: dict[str, Any] = {}
    for name in evaluated:
        if name not in splits:
            continue
        targets = np.asarray(splits[name]["labels"])
        guesses = {}
        if "constant" in chosen:
            guesses[CONSTANT[kind]] = np.full(len(targets), constant, dtype=y_train.dtype)
        if fitted is not None:
            guesses[NGRAMS] = fitted.predict(_features(vectorizer, splits[name])).astype(y_train.dtype)
        for baseline, predicted in guesses.items():
            results.setdefault(baseline, {})
            results[baseline][name] = scalars(task.compute_metrics([predicted], [targets]))
    seconds = time.perf_counter() - started
    logger.info("Baselines on %d training rows in %.1f s", len(train), seconds)
    return {**results, "train_rows": len(train), "seconds": round(seconds, 2)}


def _constant(kind: str, y_train: np.ndarray) -> Any:
    if kind == "class":
        values, counts = np.unique(y_train, return_counts=True)
        return values[np.argmax(counts)]  # ties: the lowest id, as np.argmax takes the first
    return float(y_train.mean())


def _fit_ngrams(kind: str, train: datasets.Dataset, y_train: np.ndarray, seed: int) -> tuple[Any, Any]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression, Ridge

    vectorizer = TfidfVectorizer(
        analyzer="char_wb", ngram_range=(1, 4), sublinear_tf=True, min_df=2, max_features=MAX_FEATURES
    )
    texts = list(train["text"]) + (list(train["text_pair"]) if "text_pair" in train.column_names else [])
    vectorizer.fit(texts)
    if kind == "class" and len(np.unique(y_train)) < 2:
        model: Any = _Constant(_constant(kind, y_train))
    elif kind == "class":
        model = LogisticRegression(max_iter=1000, random_state=seed)
    else:
        model = Ridge(alpha=1.0)
    model.fit(_features(vectorizer, train), y_train)
    return vectorizer, model


def _features(vectorizer: Any, split: datasets.Dataset) -> Any:
    import scipy.sparse

    first = vectorizer.transform(list(split["text"]))
    if "text_pair" not in split.column_names:
        return first
    second = vectorizer.transform(list(split["text_pair"]))
    # TF-IDF rows are L2-normalised, so the row-wise dot product is the cosine.
    cosine = scipy.sparse.csr_matrix(np.asarray(first.multiply(second).sum(axis=1)))
    return scipy.sparse.hstack([first, second, cosine]).tocsr()


class _Constant:
    """A "model" for a training sample holding one class only (a tiny `baseline_rows`)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def fit(self, features: Any, targets: np.ndarray) -> None:
        pass

    def predict(self, features: Any) -> np.ndarray:
        return np.full(features.shape[0], self.value)
