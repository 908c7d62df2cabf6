"""The report's look at single examples: confused pairs, confident mistakes, entity errors, on made-up records."""

from __future__ import annotations

from pathlib import Path

from tunesmith.evaluate import parts


def test_confused_pairs_rank_the_off_diagonal_cells_by_count() -> None:
    metrics = {"test": {"confusion_matrix": [[5, 3, 0], [1, 7, 2], [0, 6, 4]]}}
    split, pairs = parts.confused_pairs(metrics, ["a", "b", "c"])
    assert split == "test"
    assert pairs == [("c", "b", 6, 0.6), ("a", "b", 3, 0.375), ("b", "c", 2, 0.2), ("b", "a", 1, 0.1)]
    assert parts.confused_pairs({"validation": {"accuracy": 1.0}}, ["a"]) is None


def test_confident_mistakes_are_the_wrong_predictions_surest_first() -> None:
    records = [
        {"gold": "a", "predicted": "b", "confidence": 0.6},
        {"gold": "a", "predicted": "a", "confidence": 0.99},
        {"gold": "b", "predicted": "a", "confidence": 0.9},
        {"gold": "b", "predicted": "a", "confidence": 0.7},
    ]
    assert [r["confidence"] for r in parts.confident_mistakes(records, count=2)] == [0.9, 0.7]


def test_the_class_sections_show_the_mistakes_with_their_text_and_line(tmp_path: Path) -> None:
    records = [
        {"split": "validation", "line": 4, "text": "a | b\nc", "gold": "pos", "predicted": "neg", "confidence": 0.9},
        {"split": "validation", "line": 5, "text": "fine", "gold": "pos", "predicted": "pos", "confidence": 0.8},
    ]
    metrics = {"validation": {"confusion_matrix": [[0, 0], [1, 1]]}}
    text = parts.text("class", parts.Context(tmp_path, metrics, ["neg", "pos"], {"validation": records}))
    # One wrong at 0.9 (gap 0.9) and one right at 0.8 (gap 0.2): ECE 0.55.
    assert "| validation | 0.5500 | 0.5000 | 0.8500 | 2 |" in text
    assert "| pos | neg | 1 | 50.0% |" in text
    assert "| 0.900 | pos | neg | nan | 4 | a \\| b c |" in text and "fine" not in text


def test_entity_errors_sort_each_gold_entity_into_one_outcome() -> None:
    record = {
        # gold: PER 0-2, LOC 3, ORG 5, LOC 7-9; predicted: PER 0-2 (right), ORG 3 (wrong type),
        # nothing at 5 (missed), LOC 7 only (wrong boundary), MISC 10 (spurious).
        "gold": ["B-PER", "I-PER", "O", "B-LOC", "O", "B-ORG", "O", "B-LOC", "I-LOC", "O", "O"],
        "predicted": ["B-PER", "I-PER", "O", "B-ORG", "O", "O", "O", "B-LOC", "O", "O", "B-MISC"],
    }
    outcomes, confusions, spurious = parts.entity_errors([record])
    assert outcomes == {"PER": {"right": 1}, "LOC": {"wrong type": 1, "wrong boundary": 1}, "ORG": {"missed": 1}}
    assert confusions == {("LOC", "ORG"): 1} and spurious == {"MISC": 1}


def test_an_i_tag_that_starts_an_entity_counts_as_the_metrics_count_it() -> None:
    # conlleval (and the scores in metrics.json) read a leading I-PER as an entity.
    outcomes, _, spurious = parts.entity_errors([{"gold": ["B-PER", "O"], "predicted": ["I-PER", "O"]}])
    assert outcomes == {"PER": {"right": 1}} and not spurious


def test_bracketed_shows_the_spans_of_the_tags() -> None:
    words = ["today", "john", "smith", "visited", "new", "york"]
    tags = ["O", "B-PER", "I-PER", "O", "B-LOC", "I-LOC"]
    assert parts.bracketed(words, tags) == "today [john smith]PER visited [new york]LOC"


def test_examples_are_read_per_split_and_a_damaged_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "predictions.jsonl"
    path.write_text('{"split": "test", "gold": 1}\n{broken\n[1]\n{"split": "validation", "gold": 2}\n')
    assert parts.read_examples(path) == {
        "test": [{"split": "test", "gold": 1}],
        "validation": [{"split": "validation", "gold": 2}],
    }
    assert parts.read_examples(tmp_path / "missing.jsonl") == {}
