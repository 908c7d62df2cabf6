"""Likely label errors: confident learning (cleanlab) on out-of-fold predicted probabilities.

The probabilities come from a cheap model the doctor fits itself, so that nobody has to train
first: a logistic regression on the backbone's frozen, mean-pooled embeddings, cross-validated
so that every row is scored by a model that never saw it. cleanlab then flags the rows whose
given label the model finds unlikely beyond what the classes' estimated noise explains, ranked
by the probability of the given label (self-confidence), lowest first. Only a seeded sample of
`doctor.label_error_rows` training rows is examined: embedding costs time.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from tunesmith.config import RunConfig
from tunesmith.data.doctor.examples import SplitExamples
from tunesmith.data.doctor.findings import Finding, agree, example

# Texts embedded at once: large enough to keep the CPU busy, small enough to stay within memory.
_BATCH = 64


@dataclass
class Ranking:
    """The examined rows' out-of-fold probabilities, and the flagged ones, most suspicious first."""

    rows: list[int]  # indices into the split, in the order of `probabilities`
    classes: list[str]
    given: np.ndarray  # class index of each examined row's given label
    probabilities: np.ndarray
    flagged: list[int]  # positions into `rows`, ranked

    @property
    def accuracy(self) -> float:
        return float((self.probabilities.argmax(axis=1) == self.given).mean())


def embed(texts: list[str], pairs: list[str] | None, backbone: str, max_length: int) -> np.ndarray:
    """Mean-pooled last hidden states of the frozen backbone (padding left out of the mean), L2-normalised."""
    import torch
    from transformers import AutoModel

    from tunesmith.models.backbones import load_tokenizer
    from tunesmith.models.loading import load_weights

    tokenizer = load_tokenizer(backbone)
    model = load_weights(AutoModel, backbone, "backbone", dtype=torch.float32).eval()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]) + (len(pairs[i]) if pairs else 0))
    vectors = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    with torch.no_grad():
        for start in range(0, len(order), _BATCH):
            rows = order[start : start + _BATCH]
            second = [pairs[i] for i in rows] if pairs is not None else None
            batch = tokenizer(
                [texts[i] for i in rows],
                second,
                truncation=True,
                max_length=max_length,
                padding=True,
                return_tensors="pt",
            )
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            vectors[rows] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
    return vectors


def out_of_fold(features: np.ndarray, given: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Each row's class probabilities from a logistic regression fitted on the other folds."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.1))
    split = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return cross_val_predict(model, features, given, cv=split, method="predict_proba")


def rank(labels: list[str], features: np.ndarray, folds: int, seed: int, rows: list[int] | None = None) -> Ranking:
    """Out-of-fold probabilities for `labels` (one per row of `features`) and cleanlab's ranked flags."""
    from cleanlab.filter import find_label_issues

    classes = sorted(set(labels))
    given = np.asarray([classes.index(label) for label in labels])
    probabilities = out_of_fold(features, given, folds, seed)
    flagged = find_label_issues(given, probabilities, return_indices_ranked_by="self_confidence")
    return Ranking(rows or list(range(len(labels))), classes, given, probabilities, [int(i) for i in flagged])


def sample(train: SplitExamples, limit: int, folds: int, seed: int) -> list[int]:
    """A seeded sample of at most `limit` rows, without rows of labels too rare to cross-validate."""
    rows = list(range(len(train)))
    if len(rows) > limit:
        rows = sorted(np.random.default_rng(seed).choice(len(train), limit, replace=False).tolist())
    counts = Counter(str(train.labels[row]) for row in rows)
    return [row for row in rows if counts[str(train.labels[row])] >= folds]


def find_label_errors(cfg: RunConfig, train: SplitExamples, backbone: str) -> tuple[list[Finding], dict[str, Any]]:
    """The likely label errors of (a sample of) train as a finding, and how they were looked for."""
    options, seed = cfg.doctor, cfg.training.seed
    rows = sample(train, options.label_error_rows, options.label_error_folds, seed)
    labels = [str(train.labels[row]) for row in rows]
    measured: dict[str, Any] = {"examined_rows": len(rows), "of_rows": len(train), "folds": options.label_error_folds}
    if len(set(labels)) < 2:
        measured["skipped"] = "fewer than two labels with enough rows to cross-validate"
        return [], measured
    texts = [train.texts[row] for row in rows]
    pairs = [train.pairs[row] for row in rows] if train.pairs is not None else None
    features = embed(texts, pairs, backbone, cfg.training.max_length)
    ranking = rank(labels, features, options.label_error_folds, seed, rows)
    measured.update(
        model=f"logistic regression on mean-pooled embeddings of {cfg.model}",
        out_of_fold_accuracy=round(ranking.accuracy, 4),
        flagged=len(ranking.flagged),
    )
    if not ranking.flagged:
        return [], measured
    return [_finding(train, ranking, options.label_errors_listed)], measured


def _finding(train: SplitExamples, ranking: Ranking, listed: int) -> Finding:
    examples = []
    for position in ranking.flagged[:listed]:
        row, scores = ranking.rows[position], ranking.probabilities[position]
        examples.append(
            example(
                train.name,
                train.lines[row],
                train.texts[row] if train.pairs is None else f"{train.texts[row]} ||| {train.pairs[row]}",
                given=ranking.classes[ranking.given[position]],
                suggested=ranking.classes[int(scores.argmax())],
                p_given=round(float(scores[ranking.given[position]]), 3),
            )
        )
    share = len(ranking.flagged) / len(ranking.rows)
    return Finding(
        "label_errors",
        "warning",
        train.name,
        len(ranking.flagged),
        f"{agree(len(ranking.flagged), 'row', 'looks', verbs='look')} mislabelled ({100 * share:.1f}% of "
        f"{len(ranking.rows):,} examined): a model that never saw them finds another label likelier. "
        "Check the listed ones first (most suspicious first)",
        examples,
    )
