"""The report's look at single examples, chosen by what a task's target is (TaskInfo.target):

- a class: calibration (ECE, reliability diagram), the most confused label pairs, the most
  confident mistakes with their texts;
- a number: predicted against gold and the residuals, the largest errors with their texts;
- tags: entity-level errors (right, wrong type, wrong boundary, missed, spurious), the type
  confusions, and sentences with errors, their spans shown.

Each reads predictions.jsonl (one record per validation and test example, written at the end of a
run) and metrics.json; a part whose records are missing (a run from before predictions.jsonl) is left out.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunesmith.evaluate import calibration, figures

PREDICTIONS = "predictions.jsonl"
EXPLANATIONS = "explanations.json"
# Rows of the tables of single examples and of label pairs.
SHOWN = 10
# Characters of an example's text a table row shows.
TEXT_CHARS = 160


@dataclass
class Context:
    run_dir: Path
    metrics: dict[str, Any]
    names: list[str]
    # predictions.jsonl's records per split.
    examples: dict[str, list[dict[str, Any]]]
    # explanations.json: the worst errors explained (worst_errors), when the run explained any.
    explanations: list[dict[str, Any]] = field(default_factory=list)


def read_explanations(path: Path) -> list[dict[str, Any]]:
    """explanations.json's list; none when it is missing or damaged (the report loses a section, not more)."""
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return []
    return [item for item in found if isinstance(item, dict)] if isinstance(found, list) else []


def worst_errors(target: str, records: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """The errors worth explaining: the most confident mistakes (a class), the largest errors (a number)."""
    splits = {name: [r for r in records if r.get("split") == name] for name in ("validation", "test")}
    split = analysed_split(splits)
    chosen = splits[split] if split is not None else []
    if target == "class":
        return confident_mistakes(chosen, count)
    if target == "number":
        wrong = [r for r in chosen if r["predicted"] != r["gold"]]
        return sorted(wrong, key=lambda r: -abs(r["predicted"] - r["gold"]))[:count]
    return []


def explained_text(context: Context) -> str:
    """Each explained error: what it was, and the words that pushed the prediction most, either way."""
    if not context.explanations:
        return ""
    split = context.explanations[0].get("split", "validation")
    lines = [
        f"## Why the model erred ({split})",
        "",
        "The worst errors above, explained as `tunesmith explain` does (integrated gradients on the word "
        "embeddings): the words that pushed the prediction most, towards it (+) and against it (-).",
        "",
    ]
    for item in context.explanations:
        words = [w for w in item.get("words", []) if isinstance(w, dict)]
        ranked = sorted(words, key=lambda w: -w["attribution"])
        towards = ", ".join(
            f"{cell(w['text'], 40)} {w['attribution']:+.3f}" for w in ranked[:5] if w["attribution"] > 0
        )
        against = ", ".join(
            f"{cell(w['text'], 40)} {w['attribution']:+.3f}" for w in reversed(ranked[-5:]) if w["attribution"] < 0
        )
        gold, predicted = item.get("gold"), item["prediction"]
        shown = predicted.get("label", predicted.get("value"))
        shown = f"{shown:.3f}" if isinstance(shown, float) else shown
        gold = f"{gold:.3f}" if isinstance(gold, float) else gold
        # A class is pushed towards or away from; a value up or down.
        up, down = (
            ("raising it", "lowering it") if "value" in predicted else (f"towards {cell(item['target'])}", "against it")
        )
        lines += [
            f"- line {item.get('line', '?')}: gold {gold}, predicted {shown}: {example_text(item)}",
            f"  - {up}: {towards or 'none'}",
            f"  - {down}: {against or 'none'}",
        ]
    return "\n".join(lines)


def read_examples(path: Path) -> dict[str, list[dict[str, Any]]]:
    """predictions.jsonl's records per split; a damaged line is skipped, a missing file gives none."""
    found: dict[str, list[dict[str, Any]]] = {}
    if not path.is_file():
        return found
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("split"), str):
            found.setdefault(record["split"], []).append(record)
    return found


def analysed_split(examples: dict[str, list[dict[str, Any]]]) -> str | None:
    """Validation, whose errors may be studied without spending the test set; else test."""
    return next((split for split in ("validation", "test") if examples.get(split)), None)


def cell(value: Any, limit: int = TEXT_CHARS) -> str:
    """A value as one markdown table cell: one line, pipes escaped, long text cut."""
    if isinstance(value, list):
        value = " ".join(str(item) for item in value)
    text = " ".join(str(value).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("|", "\\|")


def example_text(record: dict[str, Any]) -> str:
    text = cell(record.get("text", ""))
    return f"{text} ‖ {cell(record['text_pair'])}" if record.get("text_pair") is not None else text


# --- a class ---


def calibrated_splits(context: Context) -> dict[str, tuple[list[float], list[bool]]]:
    splits = {split: calibration.confidences(records) for split, records in context.examples.items()}
    return {split: pair for split, pair in splits.items() if pair[0]}


def class_figures(context: Context) -> list[str]:
    splits = calibrated_splits(context)
    if not splits:
        return []
    figures.reliability(splits, context.run_dir / "reliability.png", classes=len(context.names))
    return ["reliability.png"]


def class_text(context: Context) -> str:
    sections = []
    splits = calibrated_splits(context)
    if splits:
        rows = ["| split | ECE | accuracy | mean confidence | examples |", "|---|---|---|---|---|"]
        for split, (confidence, correct) in splits.items():
            ece = calibration.expected_calibration_error(confidence, correct)
            rows.append(
                f"| {split} | {ece:.4f} | {sum(correct) / len(correct):.4f} | "
                f"{sum(confidence) / len(confidence):.4f} | {len(confidence):,} |"
            )
        sections += [
            "## Calibration",
            "",
            f"Expected calibration error over {calibration.BINS} equal-width confidence bins: the gap between how "
            "sure the model is and how often it is right, weighted by the examples in each bin (0 is perfect).",
            "",
            "\n".join(rows),
        ]
    pairs = confused_pairs(context.metrics, context.names)
    if pairs:
        split, ranked = pairs
        rows = ["| true | predicted | count | share of the true class |", "|---|---|---|---|"]
        rows += [f"| {cell(a)} | {cell(b)} | {count:,} | {share:.1%} |" for a, b, count, share in ranked]
        sections += ["", f"## Most confused label pairs ({split})", "", "\n".join(rows)]
    split = analysed_split(context.examples)
    if split is not None:
        mistakes = confident_mistakes(context.examples[split])
        if mistakes:
            rows = ["| confidence | gold | predicted | p(gold) | line | text |", "|---|---|---|---|---|---|"]
            rows += [
                f"| {r['confidence']:.3f} | {cell(r['gold'])} | {cell(r['predicted'])} | "
                f"{r.get('gold_probability', float('nan')):.3f} | {r.get('line', '')} | {example_text(r)} |"
                for r in mistakes
            ]
            sections += [
                "",
                f"## Most confident mistakes ({split})",
                "",
                "The wrong predictions the model was surest of: often a label error in the data, else a blind "
                "spot of the model. `line` is the example's line (or row) in its data file.",
                "",
                "\n".join(rows),
            ]
    return "\n".join(sections).strip()


def confused_pairs(metrics: dict[str, Any], names: list[str]) -> tuple[str, list[tuple[str, str, int, float]]] | None:
    """The off-diagonal cells of the confusion matrix with the most examples, of test (else validation)."""
    for split in ("test", "validation"):
        matrix = metrics.get(split, {}).get("confusion_matrix") if isinstance(metrics.get(split), dict) else None
        if not matrix:
            continue
        cells = []
        for row, (name, counts) in enumerate(zip(names, matrix, strict=True)):
            total = sum(counts)
            for column, count in enumerate(counts):
                if column != row and count:
                    cells.append((name, names[column], int(count), count / total))
        cells.sort(key=lambda c: (-c[2], -c[3], c[0], c[1]))
        return split, cells[:SHOWN]
    return None


def confident_mistakes(records: list[dict[str, Any]], count: int = SHOWN) -> list[dict[str, Any]]:
    wrong = [r for r in records if "confidence" in r and r["predicted"] != r["gold"]]
    return sorted(wrong, key=lambda r: -r["confidence"])[:count]


# --- a number ---


def numbers(context: Context) -> dict[str, tuple[list[float], list[float]]]:
    """(gold, predicted) per split."""
    return {
        split: ([r["gold"] for r in records], [r["predicted"] for r in records])
        for split, records in context.examples.items()
        if records and all(isinstance(r.get(key), (int, float)) for r in records for key in ("gold", "predicted"))
    }


def number_figures(context: Context) -> list[str]:
    splits = numbers(context)
    if not splits:
        return []
    name = context.names[0] if context.names else "value"
    figures.predicted_vs_gold(splits, name, context.run_dir / "predicted_vs_gold.png")
    return ["predicted_vs_gold.png"]


def number_text(context: Context) -> str:
    split = analysed_split(context.examples)
    sections = []
    if split is not None and split in numbers(context):
        worst = sorted(context.examples[split], key=lambda r: -abs(r["predicted"] - r["gold"]))[:SHOWN]
        rows = ["| gold | predicted | error | line | text |", "|---|---|---|---|---|"]
        rows += [
            f"| {r['gold']:.3f} | {r['predicted']:.3f} | {r['predicted'] - r['gold']:+.3f} | {r.get('line', '')} | "
            f"{example_text(r)} |"
            for r in worst
        ]
        sections += [f"## Largest errors ({split})", "", "\n".join(rows)]
    return "\n".join(sections)


# --- tags ---

ENTITY_OUTCOMES = ("right", "wrong type", "wrong boundary", "missed")


def entity_errors(records: list[dict[str, Any]]) -> tuple[dict[str, Counter], Counter, Counter]:
    """Per gold type, how its entities fared (ENTITY_OUTCOMES); the (gold, predicted) type pairs of
    same-span entities of another type; predicted entities that overlap no gold one, per type.

    Spans are read as the metrics read them (conlleval: an I- that starts an entity begins it).
    """
    from tunesmith.tasks.tagging import entity_spans

    outcomes: dict[str, Counter] = {}
    confusions: Counter = Counter()
    spurious: Counter = Counter()
    for record in records:
        gold, predicted = entity_spans(record["gold"]), entity_spans(record["predicted"])
        by_span = {(start, end): kind for kind, start, end in predicted}
        for kind, start, end in gold:
            found = by_span.get((start, end))
            if found == kind:
                outcome = "right"
            elif found is not None:
                outcome = "wrong type"
                confusions[(kind, found)] += 1
            elif any(s < end and start < e for _, s, e in predicted):
                outcome = "wrong boundary"
            else:
                outcome = "missed"
            outcomes.setdefault(kind, Counter())[outcome] += 1
        for kind, start, end in predicted:
            if not any(s < end and start < e for _, s, e in gold):
                spurious[kind] += 1
    return outcomes, confusions, spurious


def bracketed(words: list[str], tags: list[str]) -> str:
    """The sentence with each entity as [its words]TYPE."""
    from tunesmith.tasks.tagging import entity_spans

    shown = list(words)
    for kind, start, end in reversed(entity_spans(tags)):
        shown[start:end] = ["[" + " ".join(words[start:end]) + "]" + kind]
    return " ".join(shown)


def tag_text(context: Context) -> str:
    split = analysed_split(context.examples)
    if split is None:
        return ""
    records = [r for r in context.examples[split] if isinstance(r.get("gold"), list)]
    outcomes, confusions, spurious = entity_errors(records)
    kinds = sorted(set(outcomes) | set(spurious))
    rows = ["| entity type | " + " | ".join(ENTITY_OUTCOMES) + " | spurious |", "|---|" + "---|" * 5]
    for kind in kinds:
        counts = outcomes.get(kind, Counter())
        rows.append(f"| {kind} | " + " | ".join(f"{counts[o]:,}" for o in ENTITY_OUTCOMES) + f" | {spurious[kind]:,} |")
    sections = [
        f"## Entity errors ({split})",
        "",
        "Each gold entity: found with its span and type (right), its span found with another type, overlapped by a "
        "predicted entity of other bounds, or missed; spurious: predicted entities overlapping no gold one.",
        "",
        "\n".join(rows),
    ]
    if confusions:
        rows = ["| gold type | predicted type | entities |", "|---|---|---|"]
        rows += [f"| {a} | {b} | {count:,} |" for (a, b), count in confusions.most_common(SHOWN)]
        sections += ["", f"## Entity type confusions ({split})", "", "\n".join(rows)]
    wrong = [r for r in records if r["gold"] != r["predicted"]]
    if wrong:
        # The sentences with the most wrongly tagged words first.
        wrong.sort(key=lambda r: -sum(g != p for g, p in zip(r["gold"], r["predicted"], strict=False)))
        lines = []
        for record in wrong[:SHOWN]:
            words = [str(word) for word in record.get("text", [])][: len(record["gold"])]
            if len(words) < len(record["gold"]):
                continue
            lines += [
                f"- line {record.get('line', '?')}",
                f"  - gold: {cell(bracketed(words, record['gold']), 400)}",
                f"  - predicted: {cell(bracketed(words, record['predicted']), 400)}",
            ]
        if lines:
            sections += ["", f"## Sentences with errors ({split})", "", "\n".join(lines)]
    return "\n".join(sections)


# By TaskInfo.target: the sections of markdown and the figures (file names, drawn into the run folder)
# that single examples give. A target without them (a label set) gets the report's common parts only.
TEXTS: dict[str, Callable[[Context], str]] = {"class": class_text, "number": number_text, "tags": tag_text}
FIGURES: dict[str, Callable[[Context], list[str]]] = {"class": class_figures, "number": number_figures}


def text(target: str, context: Context) -> str:
    build = TEXTS.get(target)
    sections = [build(context) if build is not None else "", explained_text(context)]
    return "\n\n".join(section for section in sections if section)


def draw(target: str, context: Context) -> list[str]:
    build = FIGURES.get(target)
    return build(context) if build is not None and context.examples else []
