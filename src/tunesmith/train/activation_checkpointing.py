"""Trade compute for memory: recompute each layer's activations in the backward pass."""

from __future__ import annotations

from transformers import PreTrainedModel


def checkpoint_activations(model: PreTrainedModel) -> None:
    # Non-reentrant, so that gradients reach adapters under frozen embeddings.
    non_reentrant = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):  # the name since transformers 5.x; the old one warns
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=non_reentrant)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=non_reentrant)
