"""Zero-shot label prompts and classification by cosine similarity."""

from __future__ import annotations

import numpy as np
import pytest

from tunesmith.errors import UserError
from tunesmith.fewshot.encoder import SentenceEncoder
from tunesmith.fewshot.head import softmax
from tunesmith.fewshot.labels import parse_labels
from tunesmith.fewshot.zero_shot import label_prompts, zero_shot_head


def test_prompts_fill_each_template_with_the_description_or_the_name() -> None:
    prompts = label_prompts(["Sports", "Sci/Tech"], {"Sci/Tech": "science"}, ["about {label}", "{label} news"])
    assert prompts == [["about Sports", "Sports news"], ["about science", "science news"]]


def test_a_description_of_an_unknown_label_and_a_template_without_placeholder_are_refused() -> None:
    with pytest.raises(UserError, match="'Sport'.*labels: Sports, World"):
        label_prompts(["Sports", "World"], {"Sport": "sport"}, ["{label}"])
    with pytest.raises(UserError, match="no \\{label\\} placeholder"):
        label_prompts(["Sports", "World"], None, ["a text"])


def test_labels_from_the_command_line() -> None:
    assert parse_labels("World, Sports ,Sci/Tech=science and technology") == (
        ["World", "Sports", "Sci/Tech"],
        {"Sci/Tech": "science and technology"},
    )
    for bad, message in [("World", "at least two"), ("A,,B", "empty label"), ("A,B,A", "twice")]:
        with pytest.raises(UserError, match=message):
            parse_labels(bad)


def test_the_bundled_minilm_tells_obvious_topics_apart() -> None:
    encoder = SentenceEncoder.from_backbone("minilm")
    names = ["sports", "business", "science and technology"]
    head = zero_shot_head(encoder, names)
    texts = [
        "The striker scored twice as the home team won the cup final.",
        "Shares of the bank fell after quarterly profits missed forecasts.",
        "Researchers unveiled a faster microchip for smartphones.",
    ]
    probabilities = softmax(head.logits(encoder.embed(texts)))
    assert probabilities.argmax(axis=1).tolist() == [0, 1, 2]
    # Logits are cosines over the temperature: a cosine lies in [-1, 1].
    assert np.abs(head.logits(encoder.embed(texts))).max() <= 1 / 0.05 + 1e-4
