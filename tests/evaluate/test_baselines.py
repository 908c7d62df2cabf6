"""Baselines: the majority class (mean target) and TF-IDF + a linear model, scored by the task's own metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import write_regression_csv, write_sentiment_csv
from tunesmith.config import RunConfig
from tunesmith.data.splits import load_splits
from tunesmith.evaluate import baselines
from tunesmith.tasks import get_task, reading_options


def encoded(tiny_model: str, train: Path, **settings) -> tuple:
    cfg = RunConfig.model_validate({"model": tiny_model, "data": {"train": str(train)}, **settings})
    task = get_task(cfg)
    data = load_splits(cfg.data, cfg.training.seed, **reading_options(cfg))
    task.fit_labels(data.splits["train"], data.sources["train"])
    return task, {name: task.encode(split, data.sources[name]) for name, split in data.splits.items()}


def test_classification_baselines_score_the_majority_share_and_learn_the_sentiment_words(
    tiny_model: str, tmp_path: Path
) -> None:
    task, splits = encoded(tiny_model, write_sentiment_csv(tmp_path / "s.csv", rows_per_label=60))
    found = baselines.measure(task, splits, ("validation", "test"), rows=10_000, seed=0)
    train_labels = np.asarray(splits["train"]["labels"])
    majority = np.bincount(train_labels).argmax()
    for split in ("validation", "test"):
        labels = np.asarray(splits[split]["labels"])
        assert found["majority"][split]["accuracy"] == pytest.approx(float(np.mean(labels == majority)))
        assert found["majority"][split]["mcc"] == 0.0
        # One sentiment word carries the label: character n-grams find it.
        assert found["tfidf"][split]["accuracy"] >= 0.9
        assert "per_class" not in found["tfidf"][split]
    assert found["train_rows"] == len(splits["train"])


def test_regression_baselines_predict_the_mean_and_fit_a_ridge(tiny_model: str, tmp_path: Path) -> None:
    train = write_regression_csv(tmp_path / "r.csv", rows=200)
    cfg = RunConfig.model_validate(
        {
            "task": "regression",
            "model": tiny_model,
            "data": {"train": str(train), "label_column": "score"},
            "regression": {"target_scaling": "standard"},
        }
    )
    task = get_task(cfg)
    data = load_splits(cfg.data, cfg.training.seed, **reading_options(cfg))
    task.fit_labels(data.splits["train"], data.sources["train"])
    splits = {name: task.encode(split, data.sources[name]) for name, split in data.splits.items()}
    found = baselines.measure(task, splits, ("validation",), rows=10_000, seed=0)
    # In the data's units: the mean of the (unscaled) training targets, its squared error on validation.
    gold = np.asarray(splits["validation"]["labels"]) * task.scale + task.shift
    mean = float(np.mean(np.asarray(splits["train"]["labels"]) * task.scale + task.shift))
    assert found["mean"]["validation"]["mse"] == pytest.approx(float(np.mean((gold - mean) ** 2)))
    assert found["tfidf"]["validation"]["pearson"] > 0.8 and "test" not in found["tfidf"]


def test_a_sample_of_train_is_fitted_when_it_is_larger_than_baseline_rows(tiny_model: str, tmp_path: Path) -> None:
    task, splits = encoded(tiny_model, write_sentiment_csv(tmp_path / "s.csv", rows_per_label=60))
    assert baselines.measure(task, splits, ("validation",), rows=10, seed=0)["train_rows"] == 10


def test_pairs_are_both_sides_and_their_cosine() -> None:
    import datasets
    from sklearn.feature_extraction.text import TfidfVectorizer

    split = datasets.Dataset.from_dict({"text": ["a cat sat", "dogs run"], "text_pair": ["a cat sat", "cats nap"]})
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 2)).fit(["a cat sat", "dogs run", "cats nap"])
    features = baselines._features(vectorizer, split)
    width = len(vectorizer.vocabulary_)
    assert features.shape == (2, 2 * width + 1)
    assert features[0, -1] == pytest.approx(1.0) and 0 <= features[1, -1] < 1
