"""The pretrained model before fine-tuning as baselines: a linear probe on frozen embeddings, and zero-shot."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import write_regression_csv, write_sentiment_csv
from tests.evaluate.test_baselines import encoded
from tunesmith.config import ZeroShotOptions
from tunesmith.evaluate import probe
from tunesmith.fewshot.encoder import SentenceEncoder


@pytest.fixture
def encoder(tiny_model: str) -> SentenceEncoder:
    return SentenceEncoder.from_backbone(tiny_model, max_length=32)


def test_the_probe_scores_a_logistic_regression_fitted_on_the_frozen_embeddings(
    tiny_model: str, encoder: SentenceEncoder, tmp_path: Path
) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    task, splits = encoded(tiny_model, write_sentiment_csv(tmp_path / "s.csv", rows_per_label=60))
    found = probe.measure(task, splits, ("validation", "test"), encoder, {"probe"}, rows=10_000, seed=0)
    # The reference: the same fit done by hand on the encoder's embeddings.
    train = splits["train"]
    scaler = StandardScaler().fit(encoder.embed(list(train["text"])))
    model = LogisticRegression(max_iter=1000, random_state=0).fit(
        scaler.transform(encoder.embed(list(train["text"]))), train["labels"]
    )
    for split in ("validation", "test"):
        predicted = model.predict(scaler.transform(encoder.embed(list(splits[split]["text"]))))
        expected = float(np.mean(predicted == np.asarray(splits[split]["labels"])))
        assert found["probe"][split]["accuracy"] == pytest.approx(expected)
    assert found["probe_rows"] == len(train) and "zero_shot" not in found


def test_the_probe_fits_a_sample_of_probe_rows(tiny_model: str, encoder: SentenceEncoder, tmp_path: Path) -> None:
    task, splits = encoded(tiny_model, write_sentiment_csv(tmp_path / "s.csv", rows_per_label=60))
    assert probe.measure(task, splits, ("validation",), encoder, {"probe"}, rows=12, seed=0)["probe_rows"] == 12


def test_regression_gets_a_ridge_probe_in_the_data_units(
    tiny_model: str, encoder: SentenceEncoder, tmp_path: Path
) -> None:
    from sklearn.linear_model import RidgeCV
    from sklearn.preprocessing import StandardScaler

    task, splits = encoded(
        tiny_model,
        write_regression_csv(tmp_path / "r.csv", rows=120),
        task="regression",
        data={"train": str(tmp_path / "r.csv"), "label_column": "score"},
    )
    found = probe.measure(task, splits, ("validation",), encoder, {"probe", "zero_shot"}, rows=1000, seed=0)
    assert set(found) == {"probe", "probe_rows", "probe_seconds"}  # zero-shot is for pairs (a cosine) only
    train = encoder.embed(list(splits["train"]["text"]))
    scaler = StandardScaler().fit(train)
    model = RidgeCV(alphas=probe.ALPHAS).fit(scaler.transform(train), splits["train"]["labels"])
    predicted = model.predict(scaler.transform(encoder.embed(list(splits["validation"]["text"]))))
    # In the data's units: the targets as trained on, unscaled.
    gold = np.asarray(splits["validation"]["labels"]) * task.scale + task.shift
    expected = float(np.mean((predicted * task.scale + task.shift - gold) ** 2))
    assert found["probe"]["validation"]["mse"] == pytest.approx(expected, rel=1e-4)


def test_pair_regression_gets_the_cosine_zero_shot(tiny_model: str, encoder: SentenceEncoder, tmp_path: Path) -> None:
    import csv
    import random

    from scipy.stats import pearsonr

    rng = random.Random(0)
    words = ["cat", "dog", "sun", "rain", "tree", "car", "book", "song"]
    path = tmp_path / "pairs.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["a", "b", "score"])
        for _ in range(120):
            first = rng.sample(words, 3)
            shared = rng.randint(0, 3)
            second = first[:shared] + rng.sample([w for w in words if w not in first], 3 - shared)
            writer.writerow([" ".join(first), " ".join(second), float(shared)])
    task, splits = encoded(
        tiny_model,
        path,
        task="regression",
        data={"train": str(path), "text_column": "a", "text_pair_column": "b", "label_column": "score"},
    )
    found = probe.measure(task, splits, ("validation",), encoder, {"zero_shot"}, rows=1000, seed=0)
    assert set(found) == {"zero_shot", "probe_rows", "probe_seconds"}
    validation = splits["validation"]
    first, second = encoder.embed(list(validation["text"])), encoder.embed(list(validation["text_pair"]))
    cosine = (first * second).sum(axis=1)
    # A line through the cosine keeps its correlation with the gold values.
    expected = pearsonr(cosine, np.asarray(validation["labels"])).statistic
    assert found["zero_shot"]["validation"]["pearson"] == pytest.approx(float(expected), abs=1e-5)


def test_zero_shot_picks_the_label_whose_prompt_is_nearest(
    tiny_model: str, encoder: SentenceEncoder, tmp_path: Path
) -> None:
    task, splits = encoded(tiny_model, write_sentiment_csv(tmp_path / "s.csv", rows_per_label=30))
    options = ZeroShotOptions(templates=["It was {label}."])
    found = probe.measure(task, splits, ("test",), encoder, {"zero_shot"}, rows=100, seed=0, zero_shot=options)
    assert "probe" not in found
    labels = encoder.embed([f"It was {name}." for name in task.names])
    texts = encoder.embed(list(splits["test"]["text"]))
    predicted = (texts @ labels.T).argmax(axis=1)
    expected = float(np.mean(predicted == np.asarray(splits["test"]["labels"])))
    assert found["zero_shot"]["test"]["accuracy"] == pytest.approx(expected)


def test_labels_named_by_numbers_get_no_zero_shot() -> None:
    assert not probe._named(["0", "1"]) and probe._named(["negative", "positive"])


def test_a_pair_is_both_embeddings_their_difference_product_and_cosine(encoder: SentenceEncoder) -> None:
    import datasets

    split = datasets.Dataset.from_dict({"text": ["a cat sat", "dogs run"], "text_pair": ["a cat sat", "cats nap"]})
    features = probe.features(encoder, split)
    width = encoder.dimension
    assert features.shape == (2, 4 * width + 1)
    assert features[0, -1] == pytest.approx(1.0, abs=1e-5) and features[1, -1] < 1
    assert np.allclose(features[0, 2 * width : 3 * width], 0)


def test_the_bundled_minilm_is_a_sentence_encoder_and_a_plain_bert_is_not(tiny_model: str) -> None:
    from tunesmith.models.backbones import resolve

    assert probe.is_sentence_encoder(resolve("minilm")) and not probe.is_sentence_encoder(tiny_model)


@pytest.mark.probed
def test_a_run_measures_only_the_baselines_asked_for(tiny_config: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the run's own stage: zero-shot is for sentence encoders, so the tiny BERT is taken for one."""
    import tunesmith

    monkeypatch.setattr(probe, "is_sentence_encoder", lambda backbone: True)
    tiny_config["training"]["epochs"] = 1
    run = tunesmith.finetune({**tiny_config, "report": {"baselines": ["constant", "zero_shot"], "probe_rows": 20}})
    found = run.metrics["baselines"]
    # The probe and the n-grams are off: left out of the list.
    assert set(found) == {"majority", "train_rows", "seconds", "zero_shot", "probe_rows", "probe_seconds"}
    assert set(found["zero_shot"]) == {"validation", "test"} and found["probe_rows"] == 20
    text = (run.path / "report.md").read_text()
    assert "zero-shot (label-name similarity)" in text and "linear probe" not in text and "TF-IDF" not in text


def test_a_run_reports_its_probe_in_metrics_and_report(trained_run: Path) -> None:
    metrics = json.loads((trained_run / "metrics.json").read_text())
    scores = metrics["baselines"]["probe"]
    assert set(scores) == {"validation", "test"} and 0 <= scores["test"]["accuracy"] <= 1
    row = next(line for line in (trained_run / "report.md").read_text().splitlines() if "linear probe" in line)
    cells = [cell.strip() for cell in row.strip("|").split("|")][1:]
    assert cells[0] == f"{scores['validation']['accuracy']:.4f}" and cells[2] == f"{scores['test']['accuracy']:.4f}"
