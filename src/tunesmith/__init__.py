"""tunesmith: fine-tune pretrained language models.

import tunesmith
run = tunesmith.finetune("configs/sst2.yaml")
tunesmith.load(run.path).predict(["a gorgeous, witty film"])
"""

from tunesmith.api import Run, finetune, load
from tunesmith.config import RunConfig
from tunesmith.errors import UserError
from tunesmith.predictor import Predictor

__all__ = ["Predictor", "Run", "RunConfig", "UserError", "finetune", "load"]
