"""One word-embedding gradient buffer between checkpoints, instead of a new dense one per step.

A batch of 32 short sentences touches a few hundred of the vocabulary's rows, yet the embedding's
dense backward allocates and zeroes a gradient for every row, every step: 30,522 x 384 floats
(47 MB) on MiniLM. On the CPU a block that large is mapped afresh each time, page faults
included, a visible share of each step (bench/RESULTS.md). With `sparse=True` the backward
returns only the touched rows, and autograd adds them in place into a `.grad` that already
exists. So this keeps one dense buffer attached as the weight's `.grad`, and before each step
zeroes only the rows the previous step touched. Clipping and the optimizer see the same dense
gradient as before (bit for bit; when accumulating micro-batches, to float rounding, since each
one's rows add into the running sum), so torch's `clip_grad_norm_` measures it as it is.

The buffer is freed before evaluations and checkpoints, where the dense path holds no gradient
either, so that it does not add to the run's peak memory; the next step makes a new one.

No self-check at apply time: an evaluation forward takes no gradient, so it would test nothing.
tests/speedups/test_embedding_gradient.py trains with it and without, and compares.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class KeptEmbeddingGradient:
    embedding: nn.Embedding
    buffer: torch.Tensor | None = None
    # Token ids of the micro-batches since the buffer was last zeroed: its only non-zero rows.
    touched: list[torch.Tensor] = field(default_factory=list)

    def attach(self, input_ids: torch.Tensor) -> None:
        """Give the weight its zeroed buffer as `.grad` for a micro-batch of `input_ids`.

        Call before each forward, after `before_step`. Only while the weight trains: a frozen
        weight must keep `.grad` None, or the optimizer would still decay it.
        """
        weight = self.embedding.weight
        if not weight.requires_grad:
            return
        if weight.grad is None:  # a new step: the optimizer has let go of the last one's gradient
            if self.buffer is None:
                self.buffer = torch.zeros_like(weight)
            elif self.touched:
                self.buffer.index_fill_(0, self._touched_rows(), 0.0)
            self.touched.clear()
            weight.grad = self.buffer
        self.touched.append(input_ids.flatten())

    def _touched_rows(self) -> torch.Tensor:
        return torch.cat(self.touched).unique()

    def free(self) -> None:
        """Let go of the buffer before an evaluation or a checkpoint. Between micro-batches of a
        step it holds their gradient, as the dense path would, and is kept."""
        if self.embedding.weight.grad is None:
            self.buffer = None
            self.touched.clear()

    def release(self) -> None:
        """Back to dense gradients, so the model trains as usual wherever it goes next."""
        if self.buffer is not None and self.embedding.weight.grad is self.buffer:
            self.embedding.weight.grad = None
        self.free()
        self.embedding.sparse = False


def keep_embedding_gradient(model: nn.Module) -> KeptEmbeddingGradient | None:
    """Switch the input embedding to sparse gradients into one kept buffer; None where that does not apply.

    It applies to a plain `nn.Embedding` whose weight trains and is not tied to an output layer
    (a tied weight gets a dense gradient from that layer anyway). A PEFT layer in its place
    (LoRA on embeddings) has gradients of its own and is left alone.
    """
    try:
        embedding = model.get_input_embeddings()
        output = model.get_output_embeddings()
    except (AttributeError, NotImplementedError):
        return None
    if type(embedding) is not nn.Embedding or not embedding.weight.requires_grad:
        return None
    if output is not None and getattr(output, "weight", None) is embedding.weight:
        return None
    embedding.sparse = True
    return KeptEmbeddingGradient(embedding)
