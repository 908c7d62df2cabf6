"""The logistic-regression head kept as arrays predicts what scikit-learn's model predicts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from tunesmith.errors import UserError
from tunesmith.fewshot.head import LinearHead, softmax


@pytest.mark.parametrize("classes", [2, 3])
def test_probabilities_equal_predict_proba(classes: int, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 5)).astype(np.float32)
    y = np.arange(60) % classes
    x[np.arange(60), y] += 2.0
    head = LinearHead.fit(x, y, classes, c=1.0, seed=0)
    reference = LogisticRegression(C=1.0, max_iter=1000, random_state=0).fit(x, y).predict_proba(x)
    np.testing.assert_allclose(softmax(head.logits(x)), reference, atol=1e-5)
    head.save(tmp_path)
    np.testing.assert_allclose(LinearHead.load(tmp_path).logits(x), head.logits(x))


def test_a_label_absent_from_training_is_never_predicted() -> None:
    x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1], [0.1, 1.0]], dtype=np.float32)
    head = LinearHead.fit(x, np.array([0, 2, 0, 2]), 3, c=1.0, seed=0)
    assert softmax(head.logits(x))[:, 1].max() == 0.0


def test_a_missing_head_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="head.safetensors"):
        LinearHead.load(tmp_path)
