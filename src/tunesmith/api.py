"""Python API: `finetune(config) -> Run` and `load(run_dir) -> Predictor`.

A run's path is written out in recipes/finetune.py as a sequence of stages (stages/).
"""

from tunesmith.predictor import Predictor, load
from tunesmith.recipes.finetune import Run, finetune

__all__ = ["Predictor", "Run", "finetune", "load"]
