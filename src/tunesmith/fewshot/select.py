"""Active learning: which unlabelled texts are most worth labelling next (`tunesmith select`).

- entropy: the texts whose predicted distribution has the highest entropy (most uncertain);
- margin: the smallest gap between the two most probable labels;
- diversity: k-means (scikit-learn) on sentence embeddings with k clusters, the text nearest each centre;
- random: a seeded uniform draw, the baseline every strategy must beat.
"""

from __future__ import annotations

from typing import Any

import numpy as np

STRATEGIES = ("entropy", "margin", "diversity", "random")


def entropy(probabilities: np.ndarray) -> np.ndarray:
    from scipy.stats import entropy as scipy_entropy

    return scipy_entropy(probabilities, axis=1)


def margin(probabilities: np.ndarray) -> np.ndarray:
    top = np.sort(probabilities, axis=1)
    return top[:, -1] - top[:, -2]


def choose(
    by: str,
    k: int,
    seed: int,
    count: int,
    probabilities: np.ndarray | None = None,
    embeddings: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of `k` of `count` pool rows, best first, and each one's score under `by`.

    entropy and margin read `probabilities` (rows, labels); diversity reads `embeddings` (rows, dimension).
    """
    k = min(k, count)
    if by == "random":
        chosen = np.random.default_rng(seed).choice(count, size=k, replace=False)
        return chosen, np.zeros(k)
    if by == "entropy":
        scores = entropy(probabilities)
        # A stable sort on the negated scores: ties keep the pool's order, so a rerun chooses alike.
        chosen = np.argsort(-scores, kind="stable")[:k]
        return chosen, scores[chosen]
    if by == "margin":
        scores = margin(probabilities)
        chosen = np.argsort(scores, kind="stable")[:k]
        return chosen, scores[chosen]
    if by == "diversity":
        return nearest_to_centres(embeddings, k, seed)
    raise ValueError(f"unknown selection strategy {by!r}")


def nearest_to_centres(embeddings: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The row nearest each k-means centre (distinct rows), largest clusters first; score: distance to the centre."""
    from sklearn.cluster import KMeans

    model = KMeans(n_clusters=k, random_state=seed, n_init=3).fit(embeddings)
    distances = model.transform(embeddings)
    sizes = np.bincount(model.labels_, minlength=k)
    chosen: list[int] = []
    scores: list[float] = []
    for centre in np.argsort(-sizes, kind="stable"):
        for row in np.argsort(distances[:, centre], kind="stable"):
            if row not in chosen:
                chosen.append(int(row))
                scores.append(float(distances[row, centre]))
                break
    return np.asarray(chosen), np.asarray(scores)


def pool_embeddings(predictor: Any, texts: list[str]) -> np.ndarray:
    """Sentence embeddings of the pool: a few-shot run's own encoder, else its backbone's (mean pooled)."""
    encoder = getattr(predictor, "encoder", None)
    if encoder is None:
        from tunesmith.fewshot.encoder import SentenceEncoder

        encoder = SentenceEncoder.from_backbone(predictor.config.model, predictor.config.training.max_length)
    return encoder.embed(texts)


def probabilities_of(predictor: Any, texts: list[str]) -> np.ndarray:
    """(texts, labels) probabilities from any classification run."""
    if hasattr(predictor, "probabilities"):
        return predictor.probabilities(texts)
    results = predictor.predict(texts)
    return np.asarray([[result["probabilities"][name] for name in predictor.names] for result in results])
