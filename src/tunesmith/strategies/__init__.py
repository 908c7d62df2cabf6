"""Fine-tuning strategies: how much of the model trains, chosen by `strategy:` in the config.

A strategy is a handful of plain functions gathered in a `Strategy`:

- `prepare(model, total_steps)`: freezes, wraps (peft) or extends (adapters) the model;
- `before_step(model, step, steps_per_epoch)`: changes what trains as training goes on;
- `after_step(model, step)`: runs after each optimizer step, before gradients are cleared;
- `rate_factor(model)`: a learning-rate factor per parameter name;
- `saved_as`: "model" (Hugging Face folder), "peft" (adapter/ in peft format, plus model/
  merged when the method merges) or "adapter" (adapter/ with tunesmith's bottleneck adapters).

Only `prepare` is required. The modules: layerwise.py (full, freeze, head_only, gradual,
llrd, bitfit), peft_methods.py (lora, adalora, ia3, prefix, prompt, ptuning), adapter.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from torch import nn

from tunesmith.config import RunConfig
from tunesmith.models.loading import check_adapter_folder
from tunesmith.strategies import adapter, layerwise, peft_methods
from tunesmith.tasks import task_info

if TYPE_CHECKING:
    from tunesmith.tasks.protocol import Task


@dataclass(frozen=True)
class Strategy:
    name: str
    prepare: Callable[[nn.Module, int], nn.Module]
    before_step: Callable[[nn.Module, int, int], None] | None = None
    after_step: Callable[[nn.Module, int], None] | None = None
    rate_factor: Callable[[nn.Module], Callable[[str], float]] | None = None
    saved_as: Literal["model", "peft", "adapter"] = "model"


def _ignoring_steps(prepare: Callable[[nn.Module], nn.Module]) -> Callable[[nn.Module, int], nn.Module]:
    return lambda model, total_steps: prepare(model)


def get_strategy(cfg: RunConfig, task: Task | None = None) -> Strategy:
    """The configured strategy; `task` (needed to prepare a peft method) says what the head is."""
    name = cfg.strategy
    if name == "full":
        return Strategy(name, _ignoring_steps(layerwise.full))
    if name == "freeze":
        return Strategy(name, _ignoring_steps(partial(layerwise.freeze, options=cfg.freeze)))
    if name == "head_only":
        return Strategy(name, _ignoring_steps(layerwise.head_only))
    if name == "bitfit":
        return Strategy(name, _ignoring_steps(layerwise.bitfit))
    if name == "gradual":
        # Everything trains at first so that the optimizer (and DDP) know every parameter;
        # before_step then freezes what the schedule holds back.
        schedule = partial(layerwise.unfreeze_gradually, options=cfg.gradual)
        return Strategy(name, _ignoring_steps(layerwise.full), before_step=schedule)
    if name == "llrd":
        return Strategy(
            name, _ignoring_steps(layerwise.full), rate_factor=partial(layerwise.layer_decay, options=cfg.llrd)
        )
    if name == "adapter":
        return Strategy(name, _ignoring_steps(partial(adapter.insert, options=cfg.adapter)), saved_as="adapter")
    after_step = peft_methods.update_rank_budget if name == "adalora" else None
    return Strategy(name, partial(peft_methods.wrap, cfg=cfg, task=task), after_step=after_step, saved_as="peft")


def check_backbone_supports(cfg: RunConfig, backbone: str) -> None:
    """Refuse, before any work, a strategy that cannot serve the configured task on this backbone."""
    if get_strategy(cfg).saved_as == "peft":
        peft_methods.check_supported(cfg.strategy, task_info(cfg.task), backbone)


def write_adapter(strategy: Strategy, cfg: RunConfig, model: Any, folder: Path) -> None:
    """Write adapter/ for the strategies that have one (the caller adds the tokenizer)."""
    if strategy.saved_as == "peft":
        model.save_pretrained(folder, safe_serialization=True)
    elif strategy.saved_as == "adapter":
        adapter.save(model, cfg.adapter, folder)


def mergeable(cfg: RunConfig) -> bool:
    """Whether a plain transformers model/ can be written: always, except for unmerged or unmergeable adapters."""
    strategy = get_strategy(cfg)
    if strategy.saved_as == "model":
        return True
    if cfg.causal.load_in_4bit:  # an adapter does not merge into 4-bit weights
        return False
    return strategy.saved_as == "peft" and cfg.strategy in peft_methods.MERGEABLE and getattr(cfg, cfg.strategy).merge


def for_plain_transformers(cfg: RunConfig, model: Any) -> nn.Module:
    """The model as plain transformers should load it: adapters merged in, wrappers gone."""
    return peft_methods.merged(model) if get_strategy(cfg).saved_as == "peft" else model


def load_adapter(base: nn.Module, folder: Path) -> nn.Module:
    """A model trained with an adapter, rebuilt from adapter/ on top of a freshly loaded base model."""
    check_adapter_folder(folder)
    return adapter.load(base, folder) if adapter.is_saved_in(folder) else peft_methods.load(base, folder)
