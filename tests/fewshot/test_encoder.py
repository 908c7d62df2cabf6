"""Sentence embeddings: mean pooling over real tokens, unit length, as sentence-transformers computes them."""

from __future__ import annotations

import numpy as np
import pytest

from tunesmith.fewshot.encoder import SentenceEncoder


def test_padding_does_not_change_an_embedding(tiny_model: str) -> None:
    encoder = SentenceEncoder.from_backbone(tiny_model)
    alone = encoder.embed(["short text"])
    padded = encoder.embed(["short text", "a much longer text that pads the short one with many tokens"])
    np.testing.assert_allclose(padded[0], alone[0], atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(padded, axis=1), 1.0, atol=1e-5)


def test_the_bundled_minilm_embeds_as_sentence_transformers_does() -> None:
    sentence_transformers = pytest.importorskip("sentence_transformers")
    from tunesmith.models.backbones import resolve

    texts = ["The match ended in a draw.", "Shares fell after the report.", "A new chip doubles battery life."]
    reference = sentence_transformers.SentenceTransformer(resolve("minilm"), device="cpu").encode(texts)
    np.testing.assert_allclose(SentenceEncoder.from_backbone("minilm").embed(texts), reference, atol=1e-5)
