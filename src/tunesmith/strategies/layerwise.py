"""Strategies that choose which of the model's own parameters train, and how fast.

- full: everything;
- freeze: the embeddings and the bottom layers frozen (or all but the top k layers);
- head_only: everything but the head frozen (a linear probe);
- gradual: the head and top layer first, one more layer per epoch or every N steps (ULMFiT);
- llrd: everything, with learning rates decaying from the top layer down;
- bitfit: only the bias terms and the head (Ben Zaken et al., 2022).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from tunesmith.config import FreezeOptions, GradualOptions, LayerDecayOptions
from tunesmith.errors import UserError
from tunesmith.strategies.anatomy import embeddings, head_parameters, layer_number, layers, set_trainable


def full(model: nn.Module) -> nn.Module:
    return model


def freeze(model: nn.Module, options: FreezeOptions) -> nn.Module:
    blocks = layers(model)
    if options.top_layers is not None:
        _check_count("freeze.top_layers", options.top_layers, len(blocks))
        frozen_layers = len(blocks) - options.top_layers
        freeze_embeddings = True
    else:
        frozen_layers = len(blocks) // 2 if options.bottom_layers is None else options.bottom_layers
        _check_count("freeze.bottom_layers", frozen_layers, len(blocks))
        freeze_embeddings = options.embeddings
    for block in blocks[:frozen_layers]:
        set_trainable(block, False)
    if freeze_embeddings:
        set_trainable(embeddings(model), False)
    return model


def head_only(model: nn.Module) -> nn.Module:
    head = head_parameters(model)
    for parameter in model.parameters():
        parameter.requires_grad_(id(parameter) in head)
    return model


def bitfit(model: nn.Module) -> nn.Module:
    head = head_parameters(model)
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(id(parameter) in head or name.endswith(".bias"))
    return model


def gradual_stage(step: int, steps_per_epoch: int, options: GradualOptions) -> int:
    """How many layers beyond the top one are unfrozen after `step` optimizer steps."""
    return step // (options.every_steps or steps_per_epoch)


def unfreeze_gradually(model: nn.Module, step: int, steps_per_epoch: int, options: GradualOptions) -> None:
    """Stage s trains the head and the top s+1 layers; once all layers train, the embeddings join."""
    blocks = layers(model)
    open_layers = gradual_stage(step, steps_per_epoch, options) + 1
    for depth, block in enumerate(reversed(blocks)):
        set_trainable(block, depth < open_layers)
    set_trainable(embeddings(model), open_layers > len(blocks))


def layer_decay(model: nn.Module, options: LayerDecayOptions) -> Callable[[str], float]:
    """Learning-rate factor per parameter name: 1 for the head and top layer, decay**d going d layers down."""
    count = len(layers(model))
    head = head_parameters(model)
    in_head = {name for name, parameter in model.named_parameters() if id(parameter) in head}
    embedding_names = {name for name, _ in _named_under(model, embeddings(model))}

    def factor(name: str) -> float:
        if name in in_head:
            return 1.0
        if name in embedding_names:
            return options.decay**count
        number = layer_number(name)
        return options.decay ** (count - 1 - number) if number is not None else 1.0

    return factor


def _named_under(model: nn.Module, module: nn.Module) -> list[tuple[str, nn.Parameter]]:
    inside = {id(p) for p in module.parameters()}
    return [(name, p) for name, p in model.named_parameters() if id(p) in inside]


def _check_count(key: str, value: int, available: int) -> None:
    if value > available:
        raise UserError(f"{key} is {value}, but this model has {available} layers. Choose 0 to {available}.")
