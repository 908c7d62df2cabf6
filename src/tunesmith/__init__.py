"""tunesmith: fine-tune pretrained language models.

import tunesmith
run = tunesmith.finetune("configs/sst2.yaml")
tunesmith.load(run.path).predict(["a gorgeous, witty film"])
"""

from __future__ import annotations

import os
from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tunesmith.config import RunConfig
    from tunesmith.errors import UserError
    from tunesmith.predictor import Predictor, load
    from tunesmith.recipes.finetune import Run, finetune

# torch's CPU allocator asks Linux for transparent huge pages for blocks of 2 MB and more when
# this is set. It reads it once, at its first allocation, so it is set here, before anything
# imports torch; a value of the user's, 0 included, is kept. A 47 MB gradient mapped in huge
# pages is zeroed 12x faster than in 4 kB ones; whole MiniLM runs on 2 CPU cores trained 2%
# faster with 100 MB less peak memory (bench/RESULTS.md).
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

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
