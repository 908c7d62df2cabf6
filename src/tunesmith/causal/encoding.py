"""One example to token ids and labels: -100 wherever nothing is to be learnt.

The labels are in transformers' convention (aligned with input_ids, not yet shifted): the collator
turns them into next-token targets within each example (packing.py). Loss tokens are found by
characters, not by token ids, so that a pad token equal to EOS never hides the real EOS:
- prompt_completion: the completion, and the EOS appended after it;
- messages: every assistant turn with what the template writes after it (the end-of-turn token);
- text: everything, and the EOS.
`train_on_prompt` (causal.train_on_prompt) learns every token of every example.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tunesmith.causal import templates

IGNORE = -100


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]
    # The whole example had loss tokens, but truncation at max_length left it none.
    cut_away: bool = False


def text_and_spans(tokenizer: Any, row: dict[str, Any]) -> tuple[str, list[tuple[int, int]], bool]:
    """The example as one text, the character spans to learn, and whether EOS follows the text."""
    if row.get("messages") is not None:
        text, spans = templates.assistant_spans(tokenizer, row["messages"])
        return text, spans, False
    if row.get("prompt") is not None:
        prompt, completion = row["prompt"], row["completion"]
        return prompt + completion, [(len(prompt), len(prompt) + len(completion))], True
    return row["text"], [(0, len(row["text"]))], True


def encode(tokenizer: Any, row: dict[str, Any], max_length: int, train_on_prompt: bool = False) -> Encoded:
    text, spans, add_eos = text_and_spans(tokenizer, row)
    # A chat template writes its own special tokens (BOS among them); plain text gets the tokenizer's.
    tokens = tokenizer(text, add_special_tokens=not row.get("messages"), return_offsets_mapping=True)
    ids, offsets = list(tokens["input_ids"]), list(tokens["offset_mapping"])
    learnt = [train_on_prompt or _inside(start, spans) for start, _ in offsets]
    eos = tokenizer.eos_token_id
    if add_eos and eos is not None:
        if ids and ids[-1] == eos:  # the tokenizer appends EOS itself (with no characters of its own)
            learnt[-1] = True
        else:
            ids.append(eos)
            learnt.append(True)
    labels = [token if flag else IGNORE for token, flag in zip(ids, learnt, strict=True)]
    cut = labels[:max_length]
    return Encoded(ids[:max_length], cut, cut_away=_learns(labels) and not _learns(cut))


def _learns(labels: list[int]) -> bool:
    # The first label is never a target: no token comes before it to predict it from.
    return any(token != IGNORE for token in labels[1:])


def _inside(start: int, spans: list[tuple[int, int]]) -> bool:
    # A token learns when it starts inside a span; one that straddles the span's start belongs to the prompt.
    return any(low <= start < high for low, high in spans)
