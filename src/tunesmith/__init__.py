"""tunesmith: fine-tune pretrained language models.

import tunesmith
run = tunesmith.finetune("configs/sst2.yaml")
tunesmith.load(run.path).predict(["a gorgeous, witty film"])
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from tunesmith.speedups.huge_pages import ask_for_huge_pages

if TYPE_CHECKING:
    from tunesmith.config import RunConfig
    from tunesmith.errors import UserError
    from tunesmith.predictor import Predictor, load
    from tunesmith.recipes.finetune import Run, finetune

# Before anything imports torch: its allocator reads the setting once, at its first allocation.
ask_for_huge_pages()

# Each public name and its module, imported on first use: torch and transformers take
# seconds to import, and `tunesmith --help` or a config typo should not wait for them.
_HOMES = {
    "Predictor": "tunesmith.predictor",
    "Run": "tunesmith.recipes.finetune",
    "RunConfig": "tunesmith.config",
    "UserError": "tunesmith.errors",
    "finetune": "tunesmith.recipes.finetune",
    "load": "tunesmith.predictor",
}

__all__ = ["Predictor", "Run", "RunConfig", "UserError", "finetune", "load"]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'tunesmith' has no attribute {name!r}")
    return getattr(import_module(_HOMES[name]), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
