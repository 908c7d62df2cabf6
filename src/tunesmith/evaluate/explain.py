"""`tunesmith explain RUN --text ...`: which words pushed a prediction, by integrated gradients (captum).

The attributions are captum's LayerIntegratedGradients on the word embeddings: the path runs
from a baseline text, the same length with every word piece replaced by the padding token (the
special tokens and positions kept), to the text itself. Each piece's attribution is the sum over
its embedding's dimensions, and a word's is the sum over its pieces. They add up (completeness) to
what is explained at the text minus at the baseline, up to the approximation error captum reports
as `delta`. What is explained: the probability of a class (classification: the predicted one
unless told; multi-label: a label's own probability), or the predicted value, in the target's
units (regression). A tagger (NER) labels every word, so it is explained per predicted entity:
the mean probability of the entity's predicted tags (B-PER, I-PER, ...) on its words' first
pieces, which is the entity's score in a prediction; each entity gets its own attributions.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tunesmith.errors import UserError

if TYPE_CHECKING:
    from tunesmith.predictor import Predictor

STEPS = 50
# How many words the terminal lists as pushing for and against.
LISTED = 8


@dataclass
class Word:
    text: str
    # Which input: 0 the text, 1 the pair's second text.
    side: int
    start: int
    end: int
    attribution: float


@dataclass
class Explanation:
    text: str
    text_pair: str | None
    # The class (or label, or target) explained, and what the model gives it at the text and at the baseline.
    target: str
    score: float
    baseline_score: float
    # captum's convergence delta: sum of attributions minus (score - baseline_score).
    delta: float
    prediction: dict[str, Any]
    words: list[Word] = field(default_factory=list)
    # The input reached max_length, so pieces after it may have been cut and are not explained.
    truncated: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "text_pair": self.text_pair,
            "target": self.target,
            "score": self.score,
            "baseline_score": self.baseline_score,
            "delta": self.delta,
            "prediction": self.prediction,
            "truncated": self.truncated,
            "words": [vars(word) for word in self.words],
        }


def explained_output(predictor: Predictor, target: str | None, prediction: dict[str, Any]) -> tuple[int, str, str]:
    """(index of the output, its name, how it is read: softmax, sigmoid or value)."""
    task, names = predictor.task, predictor.names
    kind = task.info.target
    if kind == "number":
        if target is not None:
            raise UserError(f"--target names a class; a regression run predicts one value ({names[0]}): drop it.")
        return 0, names[0], "value"
    if target is None:
        if kind == "class":
            target = prediction["label"]
        else:
            probabilities = prediction["probabilities"]
            target = max(probabilities, key=probabilities.get)
    if target not in names:
        raise UserError(f"--target {target!r} is not a label of this run. Its labels: {', '.join(names)}.")
    return names.index(target), target, "softmax" if kind == "class" else "sigmoid"


def explain(
    predictor: Predictor, text: str, text_pair: str | None = None, target: str | None = None, steps: int = STEPS
) -> Explanation | TagsExplanation:
    """Why the run predicts what it does on `text`: per word attributions; per predicted entity for a tagger."""
    import torch

    task, tokenizer, config = predictor.task, predictor.tokenizer, predictor.config
    model = _check_explainable(predictor, steps)
    if task.info.token_level:
        if text_pair is not None:
            raise UserError("NER tags single texts: drop --text-pair.")
        return explain_entities(predictor, text, target, steps)
    prediction = predictor.predict([text], [text_pair] if text_pair is not None else None)[0]
    index, name, reading = explained_output(predictor, target, prediction)
    encoded = tokenizer(
        text,
        text_pair,
        truncation=True,
        max_length=config.training.max_length,
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
        return_tensors="pt",
    )
    offsets = encoded.pop("offset_mapping")[0].tolist()
    special = encoded.pop("special_tokens_mask")[0].bool()
    sides, word_ids = encoded.sequence_ids(0), encoded.word_ids(0)
    device = next(model.parameters()).device
    inputs = {key: value.to(device) for key, value in encoded.items()}
    input_ids = inputs.pop("input_ids")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    baseline = input_ids.clone()
    baseline[0, ~special.to(device)] = pad
    scale, shift = (getattr(task, "scale", 1.0), getattr(task, "shift", 0.0)) if reading == "value" else (1.0, 0.0)
    names = list(inputs)

    def forward(ids: torch.Tensor, *others: torch.Tensor) -> torch.Tensor:
        logits = model(input_ids=ids, **dict(zip(names, others, strict=True))).logits.float()
        if reading == "softmax":
            return torch.softmax(logits, dim=-1)[:, index]
        if reading == "sigmoid":
            return torch.sigmoid(logits[:, index])
        return logits[:, index] * scale + shift

    others = tuple(inputs[key] for key in names)
    per_piece, delta, score, baseline_score = _integrate(model, forward, input_ids, baseline, others, steps)
    keep = [not special[position] for position in range(len(word_ids))]
    words = _words(word_ids, sides, offsets, keep, per_piece, (text, text_pair or ""))
    return Explanation(
        text,
        text_pair,
        name,
        score,
        baseline_score,
        delta,
        prediction,
        words,
        truncated=int(input_ids.shape[1]) >= config.training.max_length,
    )


def _check_explainable(predictor: Predictor, steps: int) -> Any:
    import torch

    model = predictor.model
    if not isinstance(model, torch.nn.Module) or not hasattr(model, "get_input_embeddings"):
        raise UserError("explain needs the run's PyTorch model; an ONNX export has no gradients. Give the run folder.")
    if steps < 2:
        raise UserError(f"--steps {steps}: integrated gradients needs at least 2 steps (50 is usual).")
    return model


def _integrate(
    model: Any, forward: Any, input_ids: Any, baseline: Any, others: tuple, steps: int
) -> tuple[list[float], float, float, float]:
    """Integrated gradients of `forward` (one number per input) on the word embeddings, from `baseline` to
    `input_ids`: each piece's attribution (summed over the embedding), captum's delta, and `forward` at both ends."""
    import torch
    from captum.attr import LayerIntegratedGradients

    integrated = LayerIntegratedGradients(forward, model.get_input_embeddings())
    attributions, delta = integrated.attribute(
        input_ids,
        baselines=baseline,
        additional_forward_args=others,
        n_steps=steps,
        return_convergence_delta=True,
    )
    per_piece = attributions.sum(dim=-1)[0].detach().float().cpu().tolist()
    with torch.no_grad():
        score, baseline_score = (float(forward(ids, *others)[0]) for ids in (input_ids, baseline))
    return per_piece, float(delta[0]), score, baseline_score


def _words(
    word_ids: list[int | None],
    sides: list[int | None],
    offsets: list[list[int]] | list[tuple[int, int]],
    keep: list[bool],
    per_piece: list[float],
    sources: tuple[str, ...],
) -> list[Word]:
    """The pieces' attributions summed per word (the tokenizer's words), each word's span in its source text."""
    words: dict[tuple[int, int], Word] = {}
    for position, (word, side) in enumerate(zip(word_ids, sides, strict=True)):
        if word is None or side is None or not keep[position]:
            continue
        start, end = offsets[position]
        found = words.get((side, word))
        if found is None:
            words[(side, word)] = Word(sources[side][start:end], side, start, end, per_piece[position])
        else:
            found.end = end
            found.text = sources[side][found.start : end]
            found.attribution += per_piece[position]
    return list(words.values())


@dataclass
class EntityExplanation:
    """One predicted entity of a tagged text, and the words that pushed its tags."""

    entity: dict[str, Any]
    # The entity's predicted tag per word ("B-PER I-PER"), whose mean probability is explained.
    tags: list[str]
    score: float
    baseline_score: float
    delta: float
    words: list[Word] = field(default_factory=list)

    @property
    def target(self) -> str:
        return f"{self.entity['type']} {self.entity['text']!r}"


@dataclass
class TagsExplanation:
    """A tagger's prediction on a text, each predicted entity explained (`tunesmith explain` on an NER run)."""

    text: str
    prediction: dict[str, Any]
    entities: list[EntityExplanation] = field(default_factory=list)
    truncated: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "prediction": self.prediction,
            "truncated": self.truncated,
            "entities": [
                {
                    "entity": item.entity,
                    "tags": item.tags,
                    "score": item.score,
                    "baseline_score": item.baseline_score,
                    "delta": item.delta,
                    "words": [vars(word) for word in item.words],
                }
                for item in self.entities
            ],
        }


def explain_entities(predictor: Predictor, text: str, target: str | None = None, steps: int = STEPS) -> TagsExplanation:
    """Each entity the tagger predicts in `text` (of type `target` only, when given), explained: what is
    attributed is the mean probability of its words' predicted tags (its score in the prediction)."""
    import torch

    task, tokenizer, config = predictor.task, predictor.tokenizer, predictor.config
    model = _check_explainable(predictor, steps)
    kinds = sorted({name[2:] for name in predictor.names if name[:2] in {"B-", "I-"}})
    if target is not None and target not in kinds:
        raise UserError(f"--target {target!r} is not an entity type of this run. Its types: {', '.join(kinds)}.")
    prepared = task.preprocess(tokenizer, [text], None, 1)
    batch, extra = prepared.batches[0], prepared.extra[0]
    word_ids, offsets = extra["word_ids"][0], extra["offsets"][0]
    device = next(model.parameters()).device
    inputs = {key: value.to(device) for key, value in batch.items()}
    input_ids = inputs.pop("input_ids")
    names = list(inputs)
    others = tuple(inputs[key] for key in names)
    with torch.no_grad():
        probabilities = torch.softmax(model(input_ids=input_ids, **inputs).logits.float(), dim=-1)[0].cpu()
    prediction = task.decode(prepared, [probabilities.unsqueeze(0)])[0]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    # Special tokens (no word) kept, every word's pieces padded; the token types (word case) kept.
    words_at = torch.tensor([word is not None for word in word_ids], device=device)
    baseline = input_ids.clone()
    baseline[0, words_at] = pad
    first: dict[int, int] = {}
    for position, word in enumerate(word_ids):
        if word is not None:
            first.setdefault(word, position)
    # The tokenizer's words under each entity: those whose first piece starts inside its characters.
    explained = []
    for entity in prediction["entities"]:
        if target is not None and entity["type"] != target:
            continue
        positions = [p for w, p in sorted(first.items()) if entity["start"] <= offsets[p][0] < entity["end"]]
        tags = probabilities[positions].argmax(dim=-1)
        at, chosen = torch.tensor(positions, device=device), tags.to(device)

        def forward(ids: torch.Tensor, *rest: torch.Tensor, at: torch.Tensor = at, chosen: torch.Tensor = chosen):
            logits = model(input_ids=ids, **dict(zip(names, rest, strict=True))).logits.float()
            return torch.softmax(logits, dim=-1)[:, at, chosen].mean(dim=1)

        per_piece, delta, score, baseline_score = _integrate(model, forward, input_ids, baseline, others, steps)
        words = _words(word_ids, [0] * len(word_ids), offsets, [True] * len(word_ids), per_piece, (text,))
        explained.append(
            EntityExplanation(entity, [predictor.names[i] for i in tags.tolist()], score, baseline_score, delta, words)
        )
    truncated = int(input_ids.shape[1]) >= config.training.max_length
    return TagsExplanation(text, prediction, explained, truncated)


def render_text(explanation: Explanation | TagsExplanation) -> str:
    """For the terminal: the prediction, the sum check, the text with each word's attribution, the strongest words."""
    if isinstance(explanation, TagsExplanation):
        return _render_tags_text(explanation)
    lines = [
        f"prediction: {_prediction_line(explanation.prediction)}",
        f"explained: {explanation.target} = {explanation.score:.4f} at the text, {explanation.baseline_score:.4f} at "
        f"the baseline (every word padded); the attributions sum to "
        f"{sum(w.attribution for w in explanation.words):+.4f} (integrated gradients, error {explanation.delta:+.2g})",
        "",
    ]
    for side, label in ((0, "text"), (1, "text pair")):
        words = [word for word in explanation.words if word.side == side]
        if words:
            lines.append(f"{label}: " + " ".join(f"{w.text}({w.attribution:+.3f})" for w in words))
    ranked = sorted(explanation.words, key=lambda w: -w.attribution)
    towards = [w for w in ranked if w.attribution > 0][:LISTED]
    against = [w for w in reversed(ranked) if w.attribution < 0][:LISTED]
    lines += [
        "",
        f"towards {explanation.target}: " + (", ".join(f"{w.text} {w.attribution:+.3f}" for w in towards) or "none"),
        f"against {explanation.target}: " + (", ".join(f"{w.text} {w.attribution:+.3f}" for w in against) or "none"),
    ]
    if explanation.truncated:
        lines.append("(the input reached training.max_length: words after the cut, if any, are not explained)")
    return "\n".join(lines) + "\n"


def _render_tags_text(explanation: TagsExplanation) -> str:
    found = explanation.prediction["entities"]
    lines = [
        "prediction: " + (", ".join(f"[{e['text']}]{e['type']} ({e['score']:.4f})" for e in found) or "no entity"),
    ]
    for item in explanation.entities:
        total = sum(w.attribution for w in item.words)
        ranked = sorted(item.words, key=lambda w: -w.attribution)
        towards = [w for w in ranked if w.attribution > 0][:LISTED]
        against = [w for w in reversed(ranked) if w.attribution < 0][:LISTED]
        lines += [
            "",
            f"{item.target}: tags {' '.join(item.tags)}, mean probability {item.score:.4f} at the text, "
            f"{item.baseline_score:.4f} at the baseline (every word padded); the attributions sum to {total:+.4f} "
            f"(integrated gradients, error {item.delta:+.2g})",
            "text: " + " ".join(f"{w.text}({w.attribution:+.3f})" for w in item.words),
            "towards: " + (", ".join(f"{w.text} {w.attribution:+.3f}" for w in towards) or "none"),
            "against: " + (", ".join(f"{w.text} {w.attribution:+.3f}" for w in against) or "none"),
        ]
    if explanation.truncated:
        lines.append("(the input reached training.max_length: words after the cut, if any, are not tagged)")
    return "\n".join(lines) + "\n"


def _prediction_line(prediction: dict[str, Any]) -> str:
    if "label" in prediction:
        return f"{prediction['label']} ({prediction['score']:.4f})"
    if "value" in prediction:
        return f"{prediction['value']:.4f}"
    return ", ".join(prediction.get("labels", [])) or "no label"


def _paint(words: list[Word], side: int, source: str, entity: tuple[int, int] | None = None) -> str:
    """`source` with each word's background green (towards) or red (against), as strong as its share;
    the characters of `entity` (start, end) underlined."""
    strongest = max((abs(w.attribution) for w in words), default=0.0) or 1.0
    pieces, cursor = [], 0
    for word in sorted((w for w in words if w.side == side), key=lambda w: w.start):
        pieces.append(html.escape(source[cursor : word.start]))
        alpha = abs(word.attribution) / strongest * 0.85
        colour = f"rgba(0,150,60,{alpha:.3f})" if word.attribution >= 0 else f"rgba(210,40,40,{alpha:.3f})"
        inside = entity is not None and entity[0] <= word.start < entity[1]
        style = f"background:{colour}" + (";text-decoration:underline;font-weight:bold" if inside else "")
        pieces.append(f'<span style="{style}" title="{word.attribution:+.4f}">{html.escape(word.text)}</span>')
        cursor = word.end
    pieces.append(html.escape(source[cursor:]))
    return "".join(pieces)


_PAGE_HEAD = (
    "<!doctype html><html><head><meta charset=utf-8><title>tunesmith explain</title><style>"
    "body{font-family:sans-serif;max-width:60em;margin:2em auto}"
    ".t{font-size:1.3em;line-height:2}.t span{padding:0.1em 0.15em;border-radius:0.2em}"
    "pre{color:#444;white-space:pre-wrap}</style></head><body>"
)


def render_html(explanation: Explanation | TagsExplanation) -> str:
    """A self-contained page: each word's background green (towards) or red (against), as strong as its share."""
    if isinstance(explanation, TagsExplanation):
        return _render_tags_html(explanation)
    body = [f"<p class=t>{_paint(explanation.words, 0, explanation.text)}</p>"]
    if explanation.text_pair is not None:
        body.append(f"<p class=t>{_paint(explanation.words, 1, explanation.text_pair)}</p>")
    summary = html.escape(render_text(explanation).split("\n\n")[0])
    return (
        _PAGE_HEAD
        + f"<h1>Why {html.escape(explanation.target)}?</h1><pre>{summary}</pre>"
        + "".join(body)
        + "<p>Green pushed towards the label, red against it; hover a word for its attribution.</p></body></html>\n"
    )


def _render_tags_html(explanation: TagsExplanation) -> str:
    body = [f"<pre>{html.escape(render_text(explanation).splitlines()[0])}</pre>"]
    for item in explanation.entities:
        span = (item.entity["start"], item.entity["end"])
        body += [
            f"<h2>Why {html.escape(item.target)}? (tags {html.escape(' '.join(item.tags))}, "
            f"mean probability {item.score:.4f})</h2>",
            f"<p class=t>{_paint(item.words, 0, explanation.text, span)}</p>",
        ]
    return (
        _PAGE_HEAD
        + "<h1>Why these entities?</h1>"
        + "".join(body)
        + "<p>Each entity underlined; green pushed towards its tags, red against them; hover a word for its "
        "attribution.</p></body></html>\n"
    )
