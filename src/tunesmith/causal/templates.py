"""Chat templates: the tokenizer's own when it has one, else a built-in one named by `causal.chat_template`.

A template is a Jinja string in transformers' format, set on the tokenizer so that the run's saved
tokenizer carries it and `generate` renders prompts the same way. A built-in template's markers that
the vocabulary lacks are added as special tokens (the model's embeddings grow to match).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tunesmith.errors import UserError


@dataclass(frozen=True)
class BuiltinTemplate:
    jinja: str
    # Tokens the template writes that must be single tokens of the vocabulary.
    markers: tuple[str, ...]
    # The token that ends a turn: a trained target, and where generation stops.
    end_of_turn: str


BUILTIN_TEMPLATES: dict[str, BuiltinTemplate] = {
    "chatml": BuiltinTemplate(
        "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
        "'<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
        ("<|im_start|>", "<|im_end|>"),
        "<|im_end|>",
    ),
    "llama3": BuiltinTemplate(
        "{{ '<|begin_of_text|>' }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + "
        "'<|end_header_id|>\n\n' + message['content'] + '<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}"
        "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}",
        ("<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
        "<|eot_id|>",
    ),
    "zephyr": BuiltinTemplate(
        "{% for message in messages %}{{ '<|' + message['role'] + '|>\n' + message['content'] + '<|endofturn|>\n' }}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}",
        ("<|system|>", "<|user|>", "<|assistant|>", "<|endofturn|>"),
        "<|endofturn|>",
    ),
}


def set_template(tokenizer: Any, name: str | None, needed: bool) -> list[str]:
    """Give `tokenizer` the chat template to use; returns the marker tokens added to its vocabulary.

    `name` None: the tokenizer's own template, which `needed` (chat data) requires.
    """
    if name is None:
        if needed and not getattr(tokenizer, "chat_template", None):
            raise UserError(
                f"The data holds chats, but the tokenizer of {tokenizer.name_or_path} has no chat template. Name "
                f"one with causal.chat_template ({', '.join(BUILTIN_TEMPLATES)}), or give prompt/completion data."
            )
        return []
    if name not in BUILTIN_TEMPLATES:
        raise UserError(
            f'causal.chat_template "{name}" is not a built-in template: use {", ".join(BUILTIN_TEMPLATES)}.'
        )
    template = BUILTIN_TEMPLATES[name]
    vocabulary = tokenizer.get_vocab()
    added = [marker for marker in template.markers if marker not in vocabulary]
    if added:
        tokenizer.add_special_tokens({"additional_special_tokens": added}, replace_extra_special_tokens=False)
    tokenizer.chat_template = template.jinja
    return added


def render(tokenizer: Any, messages: list[dict[str, str]], generation_prompt: bool = False) -> str:
    try:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
    except Exception as exc:  # jinja2's TemplateError and whatever a template raises on purpose
        raise UserError(
            f"The chat template cannot render this conversation ({type(exc).__name__}: {exc}). Check the roles "
            "and their order, or name another template with causal.chat_template."
        ) from None


def assistant_spans(tokenizer: Any, messages: list[dict[str, str]]) -> tuple[str, list[tuple[int, int]]]:
    """The rendered chat and, for each assistant turn, the characters it occupies: its content and what the
    template writes after it up to the next turn (the end-of-turn token)."""
    full = render(tokenizer, messages)
    spans = []
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = render(tokenizer, messages[:index], generation_prompt=True) if index else ""
        through = render(tokenizer, messages[: index + 1])
        if not (through.startswith(before) and full.startswith(through)):
            raise UserError(
                "The chat template renders a conversation differently from its beginning (it rewrites earlier "
                "turns), so the assistant's tokens cannot be found. Name another template with causal.chat_template."
            )
        spans.append((len(before), len(through)))
    return full, spans


def end_of_turn_ids(tokenizer: Any, name: str | None) -> list[int]:
    """Token ids that end the assistant's turn: where generation stops (EOS always among them)."""
    ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    marker = BUILTIN_TEMPLATES[name].end_of_turn if name else None
    if marker is None and getattr(tokenizer, "chat_template", None):
        # The tokenizer's own template: the first special token it writes after an assistant's words.
        text, spans = assistant_spans(
            tokenizer, [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
        )
        after = text[spans[0][0] : spans[0][1]].split("b", 1)[-1]
        specials = set(tokenizer.all_special_tokens)
        for token in tokenizer.tokenize(after):
            if token in specials:
                marker = token
                break
    if marker is not None:
        ids.append(tokenizer.convert_tokens_to_ids(marker))
    return sorted(set(ids))
