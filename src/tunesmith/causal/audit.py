"""The label audit of `tunesmith inspect CONFIG`: a few training examples as the model will see them.

Each example is printed as its tokens decoded with the special tokens visible (the template's markers,
EOS), the tokens that carry loss between ⟦ and ⟧, and line breaks shown as ↵. A wrong template, a
missing EOS or a loss on the prompt is seen here before hours of training.
"""

from __future__ import annotations

from typing import Any

from tunesmith.causal.encoding import IGNORE

START, END, NEWLINE = "⟦", "⟧", "↵"


def render_example(tokenizer: Any, input_ids: list[int], labels: list[int]) -> str:
    """The example's text, the stretches that carry loss marked."""
    pieces, learning = [], False
    for token, label in zip(input_ids, labels, strict=True):
        learns = label != IGNORE
        if learns != learning:
            pieces.append(START if learns else END)
            learning = learns
        pieces.append(tokenizer.decode([token], skip_special_tokens=False, clean_up_tokenization_spaces=False))
    if learning:
        pieces.append(END)
    return "".join(pieces).replace("\n", NEWLINE + "\n")


def audit(tokenizer: Any, rows: list[dict[str, Any]], template: str, stop_tokens: list[str]) -> str:
    """What `tunesmith inspect` prints: the template and stop tokens, then each example with its counts."""
    lines = [
        f"chat template: {template}",
        f"end of sequence: {tokenizer.eos_token!r}; generation stops at: {', '.join(map(repr, stop_tokens))}",
        f"tokens between {START} and {END} carry loss; {NEWLINE} marks a line break.",
        "",
    ]
    for number, row in enumerate(rows, start=1):
        learnt = sum(label != IGNORE for label in row["labels"][1:])
        cut = " (truncated)" if row["truncated"] else ""
        lines.append(f"--- example {number} (line {row['line']}): {len(row['input_ids'])} tokens{cut}, {learnt} learnt")
        lines.append(render_example(tokenizer, row["input_ids"], row["labels"]))
        lines.append("")
    return "\n".join(lines)
