"""Generation through transformers' `generate`: greedy or sampled, stopped at the end of the turn or a stop string.

Prompts are rendered as in training: a chat run's prompt is a user turn through the run's chat template
(with the assistant's generation prompt); a prompt/completion run's prompt is the text itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from tunesmith.causal import templates
from tunesmith.errors import UserError

if TYPE_CHECKING:
    import datasets

    from tunesmith.config import CausalOptions

# Generations kept in metrics.json (and shown in the report) per evaluated split.
SAMPLES_KEPT = 5


@dataclass
class GenerationSettings:
    max_new_tokens: int = 64
    # Greedy unless sampling: then temperature, top_k and top_p shape the distribution.
    sample: bool = False
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    # Text after which generation is cut (the stop string itself left out).
    stop: list[str] = field(default_factory=list)
    seed: int | None = None

    def check(self) -> None:
        if self.max_new_tokens <= 0:
            raise UserError(f"max new tokens must be at least 1 (got {self.max_new_tokens}).")
        if self.temperature <= 0:
            raise UserError(f"temperature must be above 0 (got {self.temperature}); for greedy decoding don't sample.")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise UserError(f"top-p must be in (0, 1] (got {self.top_p}).")
        if self.top_k is not None and self.top_k <= 0:
            raise UserError(f"top-k must be at least 1 (got {self.top_k}).")


def prompt_and_reference(tokenizer: Any, row: dict[str, Any]) -> tuple[str | None, str | None]:
    """What generation starts from and the answer expected: the turns before the last assistant turn,
    or the prompt and the completion. Plain text has neither."""
    if row.get("messages") is not None:
        messages = row["messages"]
        last = max(index for index, turn in enumerate(messages) if turn["role"] == "assistant")
        return templates.render(tokenizer, messages[:last], generation_prompt=True), messages[last]["content"]
    if row.get("prompt") is not None:
        return row["prompt"], row["completion"]
    return None, None


def as_prompt(tokenizer: Any, text: str, chat: bool) -> str:
    if not chat:
        return text
    return templates.render(tokenizer, [{"role": "user", "content": text}], generation_prompt=True)


def generate(
    model: Any,
    tokenizer: Any,
    prompts: list[str],
    settings: GenerationSettings,
    stop_token_ids: list[int],
    rendered: bool = True,
    batch_size: int = 16,
) -> list[str]:
    """The generated continuation of each prompt (special tokens and anything from a stop string on removed).

    `rendered`: the prompts are chat renderings, which carry their own special tokens.
    """
    settings.check()
    if settings.seed is not None:
        torch.manual_seed(settings.seed)
    tokenizer.padding_side = "left"
    texts = []
    for start in range(0, len(prompts), batch_size):
        batch = tokenizer(
            prompts[start : start + batch_size], return_tensors="pt", padding=True, add_special_tokens=not rendered
        )
        new = new_tokens(model, dict(batch), settings, stop_token_ids, tokenizer.pad_token_id)
        texts.extend(cut_at_stop(text, settings.stop) for text in tokenizer.batch_decode(new, skip_special_tokens=True))
    return texts


def new_tokens(
    model: Any, batch: dict[str, torch.Tensor], settings: GenerationSettings, stop_token_ids: list[int], pad_id: int
) -> torch.Tensor:
    """The tokens `generate` adds after each (left-padded) prompt of `batch`, on the CPU."""
    options: dict[str, Any] = {
        "max_new_tokens": settings.max_new_tokens,
        "do_sample": settings.sample,
        "eos_token_id": stop_token_ids or None,
        "pad_token_id": pad_id,
        "use_cache": True,
    }
    if settings.sample:
        options.update(temperature=settings.temperature, top_k=settings.top_k or 0, top_p=settings.top_p or 1.0)
    else:  # unset, so that a model's own generation_config.json sampling settings don't warn under greedy
        options.update(temperature=None, top_k=None, top_p=None)
    model.eval()
    inputs = {name: tensor.to(model.device) for name, tensor in batch.items()}
    with torch.no_grad():
        output = model.generate(**inputs, **options)
    return output[:, inputs["input_ids"].shape[1] :].cpu()


def cut_at_stop(text: str, stop: list[str]) -> str:
    ends = [text.find(marker) for marker in stop if marker and marker in text]
    return text[: min(ends)] if ends else text


def score_split(
    model: Any,
    tokenizer: Any,
    split: datasets.Dataset,
    options: CausalOptions,
    stop_token_ids: list[int],
    prompt_column: str,
    reference_column: str,
    rendered: bool,
) -> dict[str, Any]:
    """Exact match (after stripping surrounding whitespace) and ROUGE-L F1 of greedy generations, on the
    first causal.evaluation_generations examples that have a reference; a few samples kept.
    `rendered`: the prompts are chat renderings (see `generate`)."""
    if options.evaluation_generations == 0 or prompt_column not in split.column_names:
        return {}
    rows = [
        (prompt, reference)
        for prompt, reference in zip(split[prompt_column], split[reference_column], strict=True)
        if reference is not None
    ][: options.evaluation_generations]
    if not rows:
        return {}
    settings = GenerationSettings(max_new_tokens=options.max_new_tokens)
    generated = generate(model, tokenizer, [prompt for prompt, _ in rows], settings, stop_token_ids, rendered)
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"])
    exact = [text.strip() == reference.strip() for text, (_, reference) in zip(generated, rows, strict=True)]
    rouge = [
        scorer.score(reference, text)["rougeL"].fmeasure for text, (_, reference) in zip(generated, rows, strict=True)
    ]
    samples = [
        {"prompt": prompt, "reference": reference, "generated": text}
        for text, (prompt, reference) in list(zip(generated, rows, strict=True))[:SAMPLES_KEPT]
    ]
    return {
        "exact_match": sum(exact) / len(exact),
        "rouge_l": sum(rouge) / len(rouge),
        "generated_examples": len(rows),
        "samples": samples,
    }
