"""tunesmith explain: integrated gradients per word, which add up to the change they explain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import tunesmith
from tests.conftest import write_sentiment_csv
from tunesmith.cli import main
from tunesmith.errors import UserError
from tunesmith.evaluate.explain import explain, render_html, render_text
from tunesmith.predictor import load

TEXT = "honestly a terrible one, what a wonderful trip"


def test_the_words_attributions_add_up_to_the_change_in_probability(trained_run: Path) -> None:
    explanation = explain(load(trained_run), TEXT)
    assert [word.text for word in explanation.words] == [
        "honestly",
        "a",
        "terrible",
        "one",
        ",",
        "what",
        "a",
        "wonderful",
        "trip",
    ]
    assert all(TEXT[w.start : w.end] == w.text for w in explanation.words)
    assert explanation.target == explanation.prediction["label"]
    assert explanation.score == pytest.approx(explanation.prediction["score"], abs=1e-5)
    total = sum(word.attribution for word in explanation.words)
    # Completeness: exact up to captum's own error estimate and float rounding.
    assert total == pytest.approx(explanation.score - explanation.baseline_score, abs=abs(explanation.delta) + 1e-6)
    other = next(name for name in ("neg", "pos") if name != explanation.target)
    against = explain(load(trained_run), TEXT, target=other)
    # Two classes: what raises one probability lowers the other by as much.
    for mine, theirs in zip(explanation.words, against.words, strict=True):
        assert mine.attribution == pytest.approx(-theirs.attribution, abs=1e-5)


def test_the_renderings_show_every_word_with_its_attribution(trained_run: Path) -> None:
    explanation = explain(load(trained_run), TEXT)
    text = render_text(explanation)
    assert f"terrible({explanation.words[2].attribution:+.3f})" in text
    page = render_html(explanation)
    assert page.count("<span ") == len(explanation.words) and "title=" in page and page.startswith("<!doctype html>")


def test_explain_refuses_an_unknown_label(trained_run: Path) -> None:
    with pytest.raises(UserError, match="not a label of this run. Its labels: neg, pos"):
        explain(load(trained_run), TEXT, target="neutral")


def test_the_command_prints_the_explanation_and_writes_the_page(
    trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    page = tmp_path / "why.html"
    assert main(["explain", str(trained_run), "--text", TEXT, "--html", str(page), "--steps", "20"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("prediction: ") and "towards " in out and f"Written: {page}" in out
    assert "wonderful" in page.read_text()
    assert main(["explain", str(trained_run), "--text", TEXT, "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert len(found["words"]) == 9 and found["target"] in {"neg", "pos"}
    assert main(["explain", str(trained_run), "--text", "   "]) == 2
    assert "--text" in capsys.readouterr().err


@pytest.mark.slow
def test_a_trained_sentiment_model_is_pushed_by_its_sentiment_words(tiny_model: str, tmp_path: Path) -> None:
    config = {
        "model": tiny_model,
        "output_dir": str(tmp_path / "run"),
        "data": {"train": str(write_sentiment_csv(tmp_path / "s.csv"))},
        "training": {"epochs": 6, "batch_size": 8, "learning_rate": 5e-3, "warmup_ratio": 0.0},
    }
    run = tunesmith.finetune(config)
    assert run.metrics["validation"]["accuracy"] == 1.0
    cases = (("the film was dreadful one", "neg", "dreadful"), ("our trip was lovely experience", "pos", "lovely"))
    for text, label, word in cases:
        explanation = explain(load(run.path), text)
        assert explanation.target == label
        assert max(explanation.words, key=lambda w: w.attribution).text == word


@pytest.fixture(scope="module")
def tagger_run(tiny_model: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny NER run that has learnt the PER and LOC of `ner_sentences`, with word case as token types."""
    from tests.conftest import ner_sentences, write_conll

    folder = tmp_path_factory.mktemp("tagger")
    config = {
        "task": "ner",
        "model": tiny_model,
        "output_dir": str(folder / "run"),
        "data": {"train": str(write_conll(folder / "train.conll", ner_sentences(80)))},
        "ner": {"word_case": True},
        "training": {"epochs": 4, "batch_size": 8, "learning_rate": 3e-3, "warmup_ratio": 0.0},
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("TUNESMITH_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
        return tunesmith.finetune(config).path


SENTENCE = "yesterday john smith visited paris"


def test_each_predicted_entity_is_explained_by_words_that_add_up_to_its_score(tagger_run: Path) -> None:
    from tunesmith.evaluate.explain import TagsExplanation

    explanation = explain(load(tagger_run), SENTENCE, steps=30)
    assert isinstance(explanation, TagsExplanation)
    found = explanation.prediction["entities"]
    assert [(e["text"], e["type"]) for e in found] == [("john smith", "PER"), ("paris", "LOC")]
    assert [item.entity for item in explanation.entities] == found
    for item in explanation.entities:
        assert [w.text for w in item.words] == SENTENCE.split()
        # What is explained is the entity's score in the prediction: the mean probability of its tags.
        assert item.score == pytest.approx(item.entity["score"], abs=1e-5)
        assert len(item.tags) == len(item.entity["text"].split()) and item.tags[0] == "B-" + item.entity["type"]
        total = sum(w.attribution for w in item.words)
        assert total == pytest.approx(item.score - item.baseline_score, abs=abs(item.delta) + 1e-6)


def test_a_tagger_explains_only_the_entities_of_the_type_asked(tagger_run: Path) -> None:
    explanation = explain(load(tagger_run), SENTENCE, target="LOC", steps=10)
    assert [item.entity["text"] for item in explanation.entities] == ["paris"]
    with pytest.raises(UserError, match="not an entity type of this run. Its types: LOC, PER"):
        explain(load(tagger_run), SENTENCE, target="ORG", steps=10)


def test_the_command_explains_a_taggers_entities(
    tagger_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    page = tmp_path / "why.html"
    assert main(["explain", str(tagger_run), "--text", SENTENCE, "--steps", "10", "--html", str(page)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("prediction: [john smith]PER") and "PER 'john smith': tags B-PER I-PER" in out
    assert page.read_text().count("text-decoration:underline") == 2 + 1  # john, smith; paris
    assert main(["explain", str(tagger_run), "--text", SENTENCE, "--steps", "10", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert [item["entity"]["type"] for item in found["entities"]] == ["PER", "LOC"]
    assert main(["explain", str(tagger_run), "--text", SENTENCE, "--text-pair", "x"]) == 2
