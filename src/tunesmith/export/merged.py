"""The trained model as one plain transformers model: peft adapters merged into the weights.

A run saved as model/ is that already. A run saved as adapter/ only (a peft method with
`merge: false`) is merged here when its method folds into the weights (LoRA, DoRA, AdaLoRA,
IA3). Prefix, prompt and P-tuning add virtual tokens, and bottleneck adapters a non-linearity:
neither folds into the base weights, so they have no Hugging Face export.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from tunesmith.config import RunConfig
from tunesmith.errors import UserError
from tunesmith.strategies import get_strategy
from tunesmith.strategies.peft_methods import MERGEABLE, merged


def plain_model(model: nn.Module, config: RunConfig, fmt: str) -> nn.Module:
    """`model` as transformers alone runs it; UserError when a `fmt` export cannot hold it."""
    from peft import PeftModel

    if isinstance(model, PeftModel):
        if config.strategy in MERGEABLE:
            return merged(model)
        raise UserError(
            f"This run was trained with strategy {config.strategy}, whose virtual tokens do not fold into the "
            f"model's weights, so it has no --format {fmt} export. Train with lora (or full) to export it."
        )
    if get_strategy(config).saved_as == "adapter" and fmt == "hf":
        raise UserError(
            "This run was trained with bottleneck adapters (strategy adapter), which do not fold into the "
            "model's weights, so plain transformers cannot load it: use --format onnx, which holds them."
        )
    return model


def save_hf(model: nn.Module, tokenizer: object, folder: Path) -> None:
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)  # type: ignore[attr-defined]
