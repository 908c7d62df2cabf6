"""A trained encoder as ONNX: the network from token ids to logits, batch and sequence length left free.

torch's TorchScript-based exporter (`dynamo=False`) is used rather than Optimum: it needs no other
package, and an encoder's graph (embeddings, attention, feed-forward, head) is what it traces
well. The exported graph is checked against the PyTorch model on inputs of another batch size and
length than the traced ones by the parity gate, so a shape frozen by the trace would not pass.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tunesmith.errors import UserError

OPSET = 17
# What the traced example is made of: two texts of different lengths, so that padding is traced too.
EXAMPLE_TEXTS = ["an example to trace the graph with", "and a shorter one"]


class _Logits(nn.Module):
    """The model with positional inputs and the logits alone as output, as the exporter wants them."""

    def __init__(self, model: nn.Module, names: list[str]) -> None:
        super().__init__()
        self.model = model
        self.names = names

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self.model(**dict(zip(self.names, tensors, strict=True))).logits


def example_batch(task: Any, tokenizer: Any, pairs: bool) -> dict[str, torch.Tensor]:
    """A batch as the task's own preprocessing makes it (NER's case types included)."""
    prepared = task.preprocess(tokenizer, EXAMPLE_TEXTS, list(reversed(EXAMPLE_TEXTS)) if pairs else None, 2)
    return prepared.batches[0]


def export_onnx(model: nn.Module, batch: dict[str, torch.Tensor], token_level: bool, path: Path) -> list[str]:
    """Write `model` to `path` as ONNX; returns its input names (those of `batch`)."""
    names = list(batch)
    wrapper = _Logits(model, names).eval()
    outputs = {0: "batch", 1: "sequence"} if token_level else {0: "batch"}
    axes = {**{name: {0: "batch", 1: "sequence"} for name in names}, "logits": outputs}
    try:
        with warnings.catch_warnings(), torch.no_grad():
            # The tracer's warnings are about Python branches on shapes in transformers' mask code,
            # taken the same way for every batch of a padded encoder; the parity gate checks the result.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapper,
                tuple(batch[name] for name in names),
                str(path),
                input_names=names,
                output_names=["logits"],
                dynamic_axes=axes,
                opset_version=OPSET,
                dynamo=False,
            )
    except (RuntimeError, torch.onnx.errors.OnnxExporterError) as exc:
        raise UserError(
            f"This model could not be exported to ONNX ({type(exc).__name__}: {str(exc).strip().splitlines()[0]}). "
            "Export it with --format hf instead."
        ) from None
    finally:
        # The exporter puts the module back in the mode it found; the model itself stays in evaluation.
        model.eval()
    return names
