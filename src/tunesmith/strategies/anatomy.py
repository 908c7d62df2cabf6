"""Where things are in a Hugging Face encoder with a task head: embeddings, layers, head.

Found by structure, not by architecture name, so that BERT, RoBERTa, DistilBERT,
ELECTRA and the like all work: the layers are the ModuleList whose length is the
config's layer count.
"""

from __future__ import annotations

import re

from torch import nn

from tunesmith.errors import UserError

# "encoder.layer.3.", "transformer.layer.3.", "h.3.", "layers.3."
_LAYER_NUMBER = re.compile(r"\.(?:layer|layers|h|block)\.(\d+)\.")


def unwrapped(model: nn.Module) -> nn.Module:
    """The transformers model inside a peft wrapper (or the model itself)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def backbone(model: nn.Module) -> nn.Module:
    """The pretrained encoder without the task head (model.bert, model.roberta, ...)."""
    base = unwrapped(model)
    prefix = getattr(base, "base_model_prefix", "")
    found = getattr(base, prefix, None) if prefix else None
    return found if isinstance(found, nn.Module) else base


def layers(model: nn.Module) -> list[nn.Module]:
    """The transformer layers, bottom (next to the embeddings) first."""
    base = unwrapped(model)
    count = getattr(base.config, "num_hidden_layers", None) or getattr(base.config, "n_layers", None)
    for module in backbone(model).modules():
        if isinstance(module, nn.ModuleList) and len(module) == count:
            return list(module)
    raise UserError(
        f"Cannot find the {count} transformer layers of this {type(base).__name__}, so layer-wise strategies "
        "do not apply to it. Use strategy: full, bitfit or lora."
    )


def embeddings(model: nn.Module) -> nn.Module:
    """The embedding block (token, position and type embeddings and their norm where it has one)."""
    encoder = backbone(model)
    block = getattr(encoder, "embeddings", None)
    return block if isinstance(block, nn.Module) else encoder.get_input_embeddings()


def head_parameters(model: nn.Module) -> set[int]:
    """ids of the task head's parameters: whatever lies outside the backbone, plus its pooler.

    The pooler feeds only the head, and sentence-embedding checkpoints (the bundled
    MiniLM among them) never trained it: there it is as new as the classifier.
    """
    base, encoder = unwrapped(model), backbone(model)
    inside = {id(p) for p in encoder.parameters()} if encoder is not base else set()
    head = {id(p) for p in base.parameters()} - inside
    pooler = getattr(encoder, "pooler", None)
    if isinstance(pooler, nn.Module):
        head |= {id(p) for p in pooler.parameters()}
    return head


def layer_number(parameter_name: str) -> int | None:
    """The transformer layer a parameter belongs to, from its name; None outside the layers."""
    found = _LAYER_NUMBER.search(parameter_name)
    return int(found.group(1)) if found else None


def set_trainable(module: nn.Module, trainable: bool) -> None:
    for parameter in module.parameters():
        parameter.requires_grad_(trainable)
