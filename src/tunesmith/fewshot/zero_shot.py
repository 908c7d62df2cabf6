"""Zero-shot classification: embed each label's prompts, classify a text by cosine similarity.

A label's prompts are its templates filled with its description (its name when it has none); their
embeddings are averaged and made unit length again, as CLIP averages its prompt ensembles. The result
is a linear head (one row per label: that embedding over the temperature), so a zero-shot run predicts,
saves and loads exactly as a fine-tuned few-shot run does.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from tunesmith.errors import UserError
from tunesmith.fewshot.encoder import SentenceEncoder
from tunesmith.fewshot.head import LinearHead

DEFAULT_TEMPLATES = ("This text is about {label}.",)
PLACEHOLDER = "{label}"


def label_prompts(names: list[str], descriptions: Mapping[str, str] | None, templates: list[str]) -> list[list[str]]:
    """Each label's prompts, in label order."""
    descriptions = dict(descriptions or {})
    unknown = sorted(set(descriptions) - set(names))
    if unknown:
        raise UserError(
            f"zero_shot.descriptions names {', '.join(map(repr, unknown))}, which "
            f"{'is not a label' if len(unknown) == 1 else 'are not labels'} (labels: {', '.join(names)}). "
            "Use the label names as they are written in the data (or in data.label_names)."
        )
    for template in templates:
        check_template(template)
    return [[template.replace(PLACEHOLDER, descriptions.get(name, name)) for template in templates] for name in names]


def check_template(template: str) -> None:
    if PLACEHOLDER not in template:
        raise UserError(
            f"zero-shot template {template!r} has no {PLACEHOLDER} placeholder, so every label would get the same "
            f"prompt. Write where the label goes, e.g. {DEFAULT_TEMPLATES[0]!r}."
        )


def label_embeddings(encoder: SentenceEncoder, prompts: list[list[str]]) -> np.ndarray:
    flat = [prompt for label in prompts for prompt in label]
    embedded = encoder.embed(flat)
    rows, start = [], 0
    for label in prompts:
        mean = embedded[start : start + len(label)].mean(axis=0)
        rows.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
        start += len(label)
    return np.stack(rows).astype(np.float32)


def zero_shot_head(
    encoder: SentenceEncoder,
    names: list[str],
    descriptions: Mapping[str, str] | None = None,
    templates: list[str] | tuple[str, ...] = DEFAULT_TEMPLATES,
    temperature: float = 0.05,
) -> LinearHead:
    """A head whose logits are cosine(text, label) / temperature: the argmax is the most similar label."""
    weight = label_embeddings(encoder, label_prompts(names, descriptions, list(templates)))
    return LinearHead(weight / temperature, np.zeros(len(names), dtype=np.float32))
