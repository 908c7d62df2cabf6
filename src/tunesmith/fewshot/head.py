"""The classifier on top of sentence embeddings: scikit-learn's logistic regression, saved as plain arrays.

A pickle runs code as it is read, so the fitted head is kept as its coefficients and intercepts in
safetensors (head.safetensors) and predicts with them directly; for a multinomial model that is exactly
`predict_proba`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tunesmith.errors import UserError
from tunesmith.models.loading import FIX

HEAD_FILE = "head.safetensors"


@dataclass
class LinearHead:
    # (classes, dimension) and (classes,): one row per label id, in id order.
    weight: np.ndarray
    bias: np.ndarray

    @classmethod
    def fit(cls, embeddings: np.ndarray, targets: np.ndarray, classes: int, c: float, seed: int) -> LinearHead:
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=c, max_iter=1000, random_state=seed).fit(embeddings, targets)
        weight = np.zeros((classes, embeddings.shape[1]), dtype=np.float32)
        bias = np.zeros(classes, dtype=np.float32)
        seen = model.classes_.astype(int)
        if len(seen) == 2:
            # scikit-learn keeps one row for two classes: softmax over (0, z) is its sigmoid(z).
            weight[seen[1]], bias[seen[1]] = model.coef_[0], model.intercept_[0]
            # A class absent from training would otherwise tie at logit 0 with the first one.
            absent = np.setdiff1d(np.arange(classes), seen)
            bias[absent] = -np.inf
        else:
            weight[seen], bias[seen] = model.coef_, model.intercept_
            bias[np.setdiff1d(np.arange(classes), seen)] = -np.inf
        return cls(weight, bias)

    def logits(self, embeddings: np.ndarray) -> np.ndarray:
        return embeddings @ self.weight.T + self.bias

    def save(self, folder: Path) -> None:
        from safetensors.numpy import save_file

        save_file({"weight": self.weight, "bias": self.bias}, str(folder / HEAD_FILE))

    @classmethod
    def load(cls, folder: Path) -> LinearHead:
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        path = folder / HEAD_FILE
        try:
            arrays = load_file(str(path))
            return cls(arrays["weight"], arrays["bias"])
        except (OSError, KeyError, SafetensorError) as exc:
            raise UserError(f"{path} is missing or damaged ({exc}). {FIX['run']}") from None


def softmax(logits: np.ndarray) -> np.ndarray:
    from scipy.special import softmax as scipy_softmax

    return scipy_softmax(logits, axis=-1)
