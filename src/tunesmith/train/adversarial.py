"""Adversarial training on the word embeddings: FGM, PGD and FreeLB (docs/adversarial.md).

- FGM (Miyato et al. 2017): after the clean backward, the word-embedding rows the step used move by
  epsilon * g / ||g|| (g: their gradient); one more forward and backward there, added to the clean gradient.
- PGD (Madry et al. 2018, as in the common BERT recipe): `steps` ascent steps of `alpha` along the normalised
  gradient, each projected back into the epsilon ball; only the last one's gradient is added to the clean one.
- FreeLB (Zhu et al. 2020): a perturbation of each example's embedded tokens, `steps` passes in all (the
  clean one is the first, from a zero perturbation), each ascent step projected per example; the parameters get
  the mean of the `steps` passes' gradients.

The weights are never changed. The perturbation is added to the word-embedding module's output by a forward
hook, and a perturbation of the embedding matrix's rows is added as those rows looked up at each position,
which is the same forward as perturbing the weight. So nothing needs restoring, frozen embeddings (LoRA) are
perturbed all the same, and the kept sparse embedding gradient of the CPU speedups sees ordinary backwards.

Under gradient accumulation the attack is made once per optimizer step, at its last micro-batch, from the
gradient of the whole step's loss, over the step's micro-batches kept until then: 4 micro-batches of 8 train
as one batch of 32 does. Each extra backward goes through the loop's own loss scaling (`Passes.backward`).
With several processes each one perturbs from the gradient of its own examples.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from tunesmith.config import AdversarialOptions
from tunesmith.errors import UserError

Batch = dict[str, torch.Tensor]
# (per-example loss sums, counts) of one forward of the model on a batch and its labels.
LossFn = Callable[[Batch, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
# The loop's backward of per-example loss sums, scaled as the clean one is.
BackwardFn = Callable[[torch.Tensor, torch.Tensor], None]


@dataclass
class Passes:
    """What the attack needs from the loop: a forward, the loop's scaled backward, and a context in which a
    backward does not synchronise the processes' gradients (Accelerate's `no_sync`)."""

    loss: LossFn
    backward: BackwardFn
    no_sync: Callable[[], AbstractContextManager[Any]]


def direction(gradient: torch.Tensor, norm: str, dims: tuple[int, ...] | None = None) -> torch.Tensor:
    """The unit ascent direction of `gradient`: over `dims` (all when None) g / ||g||_2, or sign(g) for linf."""
    if norm == "linf":
        return gradient.sign()
    length = gradient.norm() if dims is None else gradient.norm(dim=dims, keepdim=True)
    # A zero gradient (an example the model already gets right at zero loss) gives a zero step, not NaN.
    return gradient / length.clamp(min=1e-12)


def project(delta: torch.Tensor, epsilon: float, norm: str, dims: tuple[int, ...] | None = None) -> torch.Tensor:
    """`delta` brought back into the epsilon ball (L2 over `dims`, all when None) or box (linf)."""
    if norm == "linf":
        return delta.clamp(-epsilon, epsilon)
    length = delta.norm() if dims is None else delta.norm(dim=dims, keepdim=True)
    return delta * (epsilon / length.clamp(min=epsilon))


@dataclass
class _MicroBatch:
    batch: Batch
    labels: torch.Tensor
    # The token ids the word embedding looked up, and the loss gradient at its output (batch x length x hidden).
    ids: torch.Tensor | None = None
    gradient: torch.Tensor | None = None
    # FreeLB: this micro-batch's perturbation of the embedding output.
    delta: torch.Tensor | None = None


@dataclass
class Adversary:
    """One run's attacker: `clean` wraps each micro-batch's clean forward and backward, `attack` runs the extra
    passes at the step's last micro-batch. It counts the passes it adds and the time they take."""

    embedding: nn.Module
    options: AdversarialOptions
    # The model's parameters: FreeLB averages their gradients over its passes.
    parameters: list[nn.Parameter] = field(default_factory=list)
    step: list[_MicroBatch] = field(default_factory=list)
    clean_passes: int = 0
    extra_forwards: int = 0
    extra_backwards: int = 0
    extra_time_s: float = 0.0
    # The norm of each perturbation applied, for the tests and the curious: at most epsilon.
    last_norms: list[float] = field(default_factory=list)

    @contextmanager
    def clean(self, batch: Batch, labels: torch.Tensor) -> Iterator[None]:
        """Around the clean forward and backward: keeps the batch and its gradient at the embedding output."""
        kept = _MicroBatch(batch, labels)
        captured: dict[str, torch.Tensor] = {}
        with self._added(lambda ids, output: captured.setdefault("delta", _zero_leaf(output)), kept):
            yield
        delta = captured.get("delta")
        if delta is None:
            raise UserError("adversarial training: the model's forward did not use its input embeddings")
        kept.gradient = delta.grad if delta.grad is not None else torch.zeros_like(delta)
        self.step.append(kept)
        self.clean_passes += 1

    def attack(self, passes: Passes) -> None:
        """The method's extra passes over the step's micro-batches, their gradients added to the clean ones."""
        began = time.perf_counter()
        try:
            if self.options.method == "freelb":
                self._freelb(passes)
            else:
                self._weight_space(passes)
        finally:
            self.step.clear()
        self.extra_time_s += time.perf_counter() - began

    def report(self, train_time_s: float) -> dict[str, Any]:
        """metrics.json's `training.adversarial`: the method, and the compute it added to plain training."""
        clean = max(self.clean_passes, 1)
        return {
            "method": self.options.method,
            "epsilon": self.options.epsilon,
            "alpha": self.options.alpha,
            "steps": self.options.steps,
            "norm": self.options.norm,
            # Forward and backward passes per micro-batch, plain training being 1 and 1.
            "forward_passes_relative": round((clean + self.extra_forwards) / clean, 4),
            "backward_passes_relative": round((clean + self.extra_backwards) / clean, 4),
            "extra_forward_passes": self.extra_forwards,
            "extra_backward_passes": self.extra_backwards,
            # Measured: the extra passes' share of the training time.
            "extra_time_s": round(self.extra_time_s, 3),
            "extra_time_share": round(self.extra_time_s / train_time_s, 4) if train_time_s > 0 else None,
        }

    # --- FGM and PGD: a perturbation of the word-embedding rows the step looked up ---

    def _weight_space(self, passes: Passes) -> None:
        o = self.options
        rows = torch.unique(torch.cat([kept.ids.flatten() for kept in self.step]))
        gradient = self._row_gradient(rows)
        perturbation = torch.zeros_like(gradient)
        ascents = 1 if o.method == "fgm" else o.steps
        for ascent in range(1, ascents + 1):
            if o.method == "fgm":
                perturbation = o.epsilon * direction(gradient, o.norm)
            else:
                perturbation = project(perturbation + o.alpha * direction(gradient, o.norm), o.epsilon, o.norm)
            self.last_norms.append(float(perturbation.norm() if o.norm == "l2" else perturbation.abs().max()))
            if ascent < ascents:
                gradient = self._row_ascent(passes, rows, perturbation)
        final = perturbation
        self._train_at(passes, lambda kept, ids, output: final[torch.searchsorted(rows, ids)])

    def _row_gradient(self, rows: torch.Tensor) -> torch.Tensor:
        """The step's clean gradient with respect to the embedding rows `rows`: the positions' gradients, summed
        per token id (what the embedding weight's own gradient holds in those rows)."""
        first = self.step[0].gradient
        gradient = torch.zeros(len(rows), first.shape[-1], dtype=first.dtype, device=first.device)
        for kept in self.step:
            gradient.index_add_(0, torch.searchsorted(rows, kept.ids.flatten()), kept.gradient.flatten(0, -2))
        return gradient

    def _row_ascent(self, passes: Passes, rows: torch.Tensor, perturbation: torch.Tensor) -> torch.Tensor:
        """The gradient of the step's loss with respect to the rows' perturbation, at `perturbation`; the
        parameters' gradients are left as they are."""
        leaf = perturbation.detach().requires_grad_()
        gradient = torch.zeros_like(perturbation)
        for kept in self.step:
            with passes.no_sync(), self._added(lambda ids, output: leaf[torch.searchsorted(rows, ids)], kept):
                sums, _ = passes.loss(kept.batch, kept.labels)
                # The loss sum: the same scale in every micro-batch, and the direction is all that is used.
                (part,) = torch.autograd.grad(sums.sum(), leaf)
            gradient += part
            self.extra_forwards += 1
            self.extra_backwards += 1
        return gradient

    # --- FreeLB: a perturbation of each example's embedded tokens ---

    def _freelb(self, passes: Passes) -> None:
        o = self.options
        # Per example: its length x hidden block.
        dims = (1, 2)
        for kept in self.step:
            kept.delta = torch.zeros_like(kept.gradient)
        for _ in range(1, o.steps):
            for kept in self.step:
                mask = _token_mask(kept)
                step = o.alpha * direction(kept.gradient * mask, o.norm, dims)
                kept.delta = project((kept.delta + step) * mask, o.epsilon, o.norm, dims)
            self.last_norms.append(max(_largest(kept.delta, o.norm) for kept in self.step))
            gradients = self._train_at(passes, lambda kept, ids, output: _leaf(kept.delta), keep_gradient=True)
            for kept, gradient in zip(self.step, gradients, strict=True):
                kept.gradient = gradient
        # The mean over the `steps` passes: the clean gradient and each adversarial one count once.
        if o.steps > 1:
            for parameter in self.parameters:
                if parameter.grad is not None:
                    parameter.grad.div_(o.steps)

    # --- shared ---

    def _train_at(
        self,
        passes: Passes,
        perturb: Callable[[_MicroBatch, torch.Tensor, torch.Tensor], torch.Tensor],
        keep_gradient: bool = False,
    ) -> list[torch.Tensor]:
        """A forward and backward of each kept micro-batch, perturbed, its gradient added to the parameters'
        through the loop's scaled backward; the processes synchronise at the last one only."""
        gradients = []
        for index, kept in enumerate(self.step):
            captured: dict[str, torch.Tensor] = {}

            def added(
                ids: torch.Tensor, output: torch.Tensor, kept: _MicroBatch = kept, captured: dict = captured
            ) -> torch.Tensor:
                captured["delta"] = perturb(kept, ids, output)
                return captured["delta"]

            last = index == len(self.step) - 1
            with _unless(last, passes.no_sync), self._added(added, kept):
                sums, counts = passes.loss(kept.batch, kept.labels)
                passes.backward(sums, counts)
            if keep_gradient:
                delta = captured["delta"]
                gradients.append(delta.grad if delta.grad is not None else torch.zeros_like(delta))
            self.extra_forwards += 1
            self.extra_backwards += 1
        return gradients

    @contextmanager
    def _added(
        self, perturbation: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], kept: _MicroBatch
    ) -> Iterator[None]:
        """Within it, the word embedding's output has `perturbation(ids, output)` added to it."""

        def hook(module: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
            ids = inputs[0]
            if kept.ids is None:
                kept.ids = ids.detach()
            return output + perturbation(ids, output).to(output.dtype)

        handle = self.embedding.register_forward_hook(hook)
        try:
            yield
        finally:
            handle.remove()


def build_adversary(model: nn.Module, options: AdversarialOptions, deepspeed: bool = False) -> Adversary | None:
    """The attacker for `model` (as the strategy prepared it, LoRA or not), or None when the method is none."""
    if options.method == "none":
        return None
    if deepspeed:
        # DeepSpeed steps the optimizer inside each backward: a step cannot take several.
        raise UserError(
            f"adversarial.method {options.method} needs several backward passes per optimizer step, and DeepSpeed "
            "steps inside each one: train without DeepSpeed (DDP or FSDP), or set adversarial.method: none"
        )
    try:
        embedding = model.get_input_embeddings()
    except (AttributeError, NotImplementedError):
        embedding = None
    if not isinstance(embedding, nn.Module):
        raise UserError(
            f"adversarial.method {options.method} perturbs the word embeddings, and this model has none "
            "(get_input_embeddings): set adversarial.method: none"
        )
    return Adversary(embedding, options, list(model.parameters()))


def _zero_leaf(output: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(output, requires_grad=True)


def _leaf(delta: torch.Tensor) -> torch.Tensor:
    return delta.detach().clone().requires_grad_()


def _token_mask(kept: _MicroBatch) -> torch.Tensor:
    """1 at real tokens, 0 at padding, shaped to broadcast over the hidden size."""
    mask = kept.batch.get("attention_mask")
    rows, length = kept.gradient.shape[:2]
    if mask is None or mask.shape[1] != length or rows % mask.shape[0]:
        return torch.ones_like(kept.gradient[..., :1])
    # R-Drop runs the batch twice in one forward: the mask repeats.
    return mask.repeat(rows // mask.shape[0], 1).unsqueeze(-1).to(kept.gradient.dtype)


def _largest(delta: torch.Tensor, norm: str) -> float:
    """The largest per-example norm of `delta`."""
    if norm == "linf":
        return float(delta.abs().max())
    return float(delta.flatten(1).norm(dim=1).max())


@contextmanager
def _unless(condition: bool, context: Callable[[], AbstractContextManager[Any]]) -> Iterator[None]:
    if condition:
        yield
    else:
        with context():
            yield
