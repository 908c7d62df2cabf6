"""CPU speed patches, behind one switch (`training.cpu_speedups`) and two entry points.

- `apply_speedups(model, cfg, device)`: patches a model, once, where it is built for training
  (`training=True`) or loaded for prediction (`training=False`, only what changes prediction).
- `training_speedups(model, cfg, accelerator)`: the training loop's side, as hooks `fit` calls.

The patches, one module each:

    first_token_layer     the last layer of a BERT-style sequence classifier computes only the
                          first token, the one its head reads (training and prediction)
    sliced_mask_dropout   CPU dropout with masks from 16-bit slices of 64-bit random words
                          (dropout.py; training)
    sliced_mask_attention attention written out with that mask in CPU training, instead of
                          SDPA's unfused dropout path (attention.py)
    embedding_gradient    one word-embedding gradient buffer that sparse gradients add into,
                          not a dense one per step (one process on the CPU; training loop)

They apply on the CPU only: on a GPU, torch's fused dropout and attention kernels already do
this work fast, and on one H100 tunesmith with the first-token layer trained no faster than
the Trainer (bench/RESULTS.md, "On a GPU"). They apply only with
a transformers release in `TESTED_TRANSFORMERS`, since they lean on its layer and attention
internals. Each model patch passes a self-check as it is applied (self_check.py): the model's
evaluation forward on a small padded batch, compared with the unpatched model's; a patch that
fails it is undone and a warning names it. Huge pages (huge_pages.py) are decided at import.

This module imports neither torch nor transformers at its top: `import tunesmith` imports it
(huge pages must be asked for before torch allocates), and the command line starts without them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from accelerate import Accelerator
    from torch import nn

    from tunesmith.config import TrainingConfig
    from tunesmith.speedups.embedding_gradient import KeptEmbeddingGradient

logger = logging.getLogger(__name__)

# The transformers releases these patches are tested on (tests/speedups/).
TESTED_TRANSFORMERS = ">=5.0,<6"

Undo = Callable[[], None]


def apply_speedups(
    model: nn.Module, cfg: TrainingConfig, device: torch.device | str, *, training: bool = True
) -> list[str]:
    """Apply the speed patches that fit `model` on `device`, each self-checked; returns the names
    of those applied. Call it once the model is what will train (after the strategy's `prepare`,
    so that LoRA's dropouts are patched too) or, for prediction, once it is loaded."""
    if _refusal(cfg.cpu_speedups, device) is not None:
        return []
    import torch

    from tunesmith.speedups import attention, dropout, first_token_layer, self_check

    patches = [_Patch("first_token_layer", first_token_layer.first_token_last_layer)]
    if training:
        patches += [
            _Patch("sliced_mask_dropout", dropout.use_sliced_mask_dropout, check_alone=dropout.check_statistics),
            _Patch(
                "sliced_mask_attention",
                attention.use_sliced_mask_attention,
                check_forward=attention.written_out_for_the_check,
            ),
        ]
    # The checks draw no random numbers from a seeded run's generator: its draws stay as they were.
    with torch.random.fork_rng(devices=[]):
        try:
            inputs = self_check.probe_inputs(model)
            reference = self_check.outputs(model, inputs)
        except Exception as error:  # a model that takes no token ids, or no mask
            logger.warning(
                "CPU speedups not applied: the model does not run on the self-check's input (%s: %s)",
                type(error).__name__,
                error,
            )
            return []
        applied = [patch.name for patch in patches if patch.apply_checked(model, inputs, reference)]
    if applied:
        logger.debug("CPU speedups applied: %s", ", ".join(applied))
    return applied


@dataclass
class TrainingSpeedups:
    """The training loop's side of the speedups, as hooks that `fit` calls; each does nothing
    where no speedup applies. The kept embedding gradient's invariant lives here: a zeroed
    buffer before each micro-batch, none held through evaluations and checkpoints, dense
    gradients again once training is done."""

    embedding_gradient: KeptEmbeddingGradient | None = None
    applied: list[str] = field(default_factory=list)

    def before_micro_batch(self, batch: Mapping[str, Any]) -> None:
        """Before each micro-batch's forward, after the strategy's `before_step`."""
        if self.embedding_gradient is not None:
            self.embedding_gradient.attach(batch["input_ids"])

    def before_evaluation(self) -> None:
        if self.embedding_gradient is not None:
            self.embedding_gradient.free()

    def before_checkpoint(self) -> None:
        if self.embedding_gradient is not None:
            self.embedding_gradient.free()

    def finished(self) -> None:
        """After the last step: the model trains as usual wherever it goes next."""
        if self.embedding_gradient is not None:
            self.embedding_gradient.release()


def training_speedups(model: nn.Module, cfg: TrainingConfig, accelerator: Accelerator) -> TrainingSpeedups:
    """The loop's speedups for `model` (as `accelerator.prepare` returned it)."""
    if _refusal(cfg.cpu_speedups, accelerator.device) is not None:
        return TrainingSpeedups()
    # DDP's gradient hooks and torch.compile keep the usual dense embedding gradient.
    if accelerator.num_processes > 1 or cfg.compile:
        logger.debug("The kept embedding gradient is for one process without torch.compile: not used")
        return TrainingSpeedups()
    from tunesmith.speedups.embedding_gradient import keep_embedding_gradient

    kept = keep_embedding_gradient(accelerator.unwrap_model(model))
    return TrainingSpeedups(kept, ["embedding_gradient"] if kept is not None else [])


def transformers_untested() -> str | None:
    """Why the installed transformers is not one the patches are tested on, or None."""
    from packaging.specifiers import SpecifierSet  # a dependency of transformers and accelerate

    try:
        installed = metadata.version("transformers")
    except metadata.PackageNotFoundError:
        return "transformers is not installed"
    if SpecifierSet(TESTED_TRANSFORMERS).contains(installed, prereleases=True):
        return None
    return f"transformers {installed} is outside the releases they are tested on ({TESTED_TRANSFORMERS})"


def _refusal(enabled: bool, device: torch.device | str) -> str | None:
    """Why no speedup applies here, or None; logged (at INFO where it is not the user's choice)."""
    if not enabled:
        reason = "training.cpu_speedups is off"
    elif str(device).split(":")[0] != "cpu":
        reason = f"the model runs on {device}; they are for the CPU (GPU kernels are fused already)"
    else:
        reason = transformers_untested()
        if reason is not None:
            logger.info("CPU speedups not applied: %s", reason)
        return reason
    logger.debug("CPU speedups not applied: %s", reason)
    return reason


@dataclass(frozen=True)
class _Patch:
    name: str
    # Patches the model; returns the undo, or None where the patch does not fit the model.
    apply: Callable[[nn.Module], Undo | None]
    # Within it, the check's evaluation forward takes the patch's training path where it has one.
    check_forward: Callable[[nn.Module], AbstractContextManager[Any]] = lambda model: nullcontext()
    # A check outside the model: the problem found, or None.
    check_alone: Callable[[], str | None] = lambda: None

    def apply_checked(self, model: nn.Module, inputs: dict[str, Any], reference: Any) -> bool:
        from tunesmith.speedups import self_check

        try:
            undo = self.apply(model)
        except Exception as error:  # a transformers release without what the patch uses
            logger.warning("CPU speedup %s not applied: %s: %s", self.name, type(error).__name__, error)
            return False
        if undo is None:
            return False
        try:
            problem = self.check_alone()
            if problem is None:
                with self.check_forward(model):
                    problem = self_check.mismatch(reference, self_check.outputs(model, inputs))
        except Exception as error:
            problem = f"the patched model's forward failing ({type(error).__name__}: {error})"
        if problem is None:
            return True
        undo()
        logger.warning(
            "CPU speedup %s not applied: its self-check found %s; the model is left as it was", self.name, problem
        )
        return False
