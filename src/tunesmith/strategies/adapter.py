"""Bottleneck adapters (Houlsby et al., 2019; Pfeiffer et al., 2021), written here.

peft has no bottleneck adapters, and the `adapters` library pins transformers 4.x, so
this is a small module of our own. An adapter is a residual bottleneck, x + up(gelu(down(x))),
placed on the output of a layer's attention projection and feed-forward output projection
(Houlsby) or of the feed-forward projection only (Pfeiffer), before the residual sum and
LayerNorm. `up` starts at zero, so the adapted model starts as the pretrained one.
The adapters, the LayerNorms and the head train; everything else stays frozen.

Adapters do not fold into the base weights (there is a non-linearity), so the trained
model is saved as adapter/ (these weights plus the head) and rebuilt on loading.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from tunesmith.config import AdapterOptions
from tunesmith.errors import UserError
from tunesmith.models.loading import FIX, check_adapter_keys, first_line
from tunesmith.strategies.anatomy import head_parameters

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"

# Regular expressions for the linear layers whose outputs get an adapter, per model type.
ATTENTION_OUTPUTS = {
    "bert": r"\.attention\.output\.dense$",
    "roberta": r"\.attention\.output\.dense$",
    "xlm-roberta": r"\.attention\.output\.dense$",
    "electra": r"\.attention\.output\.dense$",
    "distilbert": r"\.attention\.out_lin$",
}
FEED_FORWARD_OUTPUTS = {
    "bert": r"\.layer\.\d+\.output\.dense$",
    "roberta": r"\.layer\.\d+\.output\.dense$",
    "xlm-roberta": r"\.layer\.\d+\.output\.dense$",
    "electra": r"\.layer\.\d+\.output\.dense$",
    "distilbert": r"\.ffn\.lin2$",
}


class Bottleneck(nn.Module):
    def __init__(self, width: int, size: int):
        super().__init__()
        self.down = nn.Linear(width, size)
        self.up = nn.Linear(size, width)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden + self.up(nn.functional.gelu(self.down(hidden)))


class Adapted(nn.Module):
    """A pretrained linear layer followed by its adapter."""

    def __init__(self, linear: nn.Linear, size: int):
        super().__init__()
        self.linear = linear
        self.adapter = Bottleneck(linear.out_features, size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.adapter(self.linear(hidden))


def targets(model: nn.Module, options: AdapterOptions) -> list[str]:
    if options.target_modules:
        return options.target_modules
    model_type = model.config.model_type
    if model_type not in FEED_FORWARD_OUTPUTS:
        raise UserError(
            f"tunesmith has no default adapter placement for model type {model_type!r} "
            f"(it knows {', '.join(sorted(FEED_FORWARD_OUTPUTS))}). Set adapter.target_modules to regular "
            "expressions matching the linear layers whose output should pass through an adapter."
        )
    chosen = [FEED_FORWARD_OUTPUTS[model_type]]
    return [ATTENTION_OUTPUTS[model_type], *chosen] if options.kind == "houlsby" else chosen


def insert(model: nn.Module, options: AdapterOptions) -> nn.Module:
    """Put adapters after the target linear layers and freeze all but adapters, LayerNorms and head."""
    patterns = [re.compile(pattern) for pattern in targets(model, options)]
    chosen = [
        name
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and any(pattern.search(name) for pattern in patterns)
    ]
    if not chosen:
        raise UserError(
            f"adapter.target_modules {targets(model, options)} match no linear layer of this model. "
            "Check the expressions against the names in model.named_modules()."
        )
    head = head_parameters(model)
    for parameter in model.parameters():
        parameter.requires_grad_(id(parameter) in head)
    for name in chosen:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        linear = getattr(parent, child)
        size = max(1, linear.out_features // options.reduction_factor)
        setattr(parent, child, Adapted(linear, size).to(linear.weight.device, linear.weight.dtype))
    for module in model.modules():
        if isinstance(module, nn.LayerNorm):
            for parameter in module.parameters():
                parameter.requires_grad_(True)
    return model


def save(model: nn.Module, options: AdapterOptions, folder: Path) -> None:
    """The trained weights (adapters, LayerNorms, head) and how to rebuild the adapted model."""
    trained = {name: p.detach().cpu().contiguous() for name, p in model.named_parameters() if p.requires_grad}
    save_file(trained, str(folder / WEIGHTS_FILE))
    (folder / CONFIG_FILE).write_text(
        json.dumps({"method": "bottleneck-adapter", **options.model_dump()}, indent=2) + "\n", encoding="utf-8"
    )


def is_saved_in(folder: Path) -> bool:
    config = folder / CONFIG_FILE
    return config.is_file() and json.loads(config.read_text()).get("method") == "bottleneck-adapter"


def load(base: nn.Module, folder: Path) -> nn.Module:
    saved = json.loads((folder / CONFIG_FILE).read_text())
    saved.pop("method")
    try:
        options = AdapterOptions(**saved)
    except (TypeError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        raise UserError(
            f"{folder / CONFIG_FILE} does not describe adapters ({first_line(exc)}). {FIX['run']}"
        ) from None
    model = insert(base, options)
    weights = load_file(str(folder / WEIGHTS_FILE))
    # What `save` wrote: every parameter that trains.
    trained = {name for name, parameter in model.named_parameters() if parameter.requires_grad}
    check_adapter_keys(folder / WEIGHTS_FILE, missing=trained - set(weights), unknown=set(weights) - trained)
    model.load_state_dict(weights, strict=False)
    return model
