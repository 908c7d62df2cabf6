"""Running an exported model: an onnxruntime session in the place of the transformers model.

`OnnxModel` answers the calls the task's `forward` and the evaluation loop make of a model
(`model(**batch).logits`, `.device`, `.eval()`), so that prediction and scoring are the same
code for PyTorch and ONNX: the task tokenizes and decodes, onnxruntime runs the network. torch
only carries the tensors in between.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from tunesmith.errors import UserError
from tunesmith.export.folder import MODEL_FOLDER, ONNX_FILE, read_manifest

if TYPE_CHECKING:
    from tunesmith.predictor import Predictor


@dataclass
class Output:
    logits: torch.Tensor


class OnnxModel:
    device = torch.device("cpu")

    def __init__(self, path: Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        # Errors only: onnxruntime warns on every load about initializers it keeps as inputs.
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types, not OSError
            raise UserError(
                f"{path} could not be loaded by onnxruntime ({type(exc).__name__}: {str(exc).strip()[:200]}). "
                "The export is damaged: export the run again."
            ) from None
        self.input_names = [item.name for item in self.session.get_inputs()]
        self.path = Path(path)

    def __call__(self, **inputs: torch.Tensor) -> Output:
        missing = [name for name in self.input_names if name not in inputs]
        if missing:
            raise ValueError(f"the ONNX model needs {', '.join(missing)}, which the batch lacks")
        # The graph takes int64 ids and masks; inputs it does not take (a tokenizer's extras) are left out.
        feed = {name: np.ascontiguousarray(inputs[name].numpy(), dtype=np.int64) for name in self.input_names}
        (logits,) = self.session.run(["logits"], feed)
        return Output(torch.from_numpy(logits))

    def eval(self) -> OnnxModel:
        return self

    def train(self, mode: bool = True) -> OnnxModel:
        return self


def load_export(path: Path, threads: int | None = None, fmt: str | None = None) -> Predictor:
    """A Predictor for an export folder: ONNX through onnxruntime; hf as a run's model/ loads (speed patches,
    device), which is what it is. `fmt` is given while the export is checked, before its export.json exists."""
    from tunesmith.models.loading import load_config, load_tokenizer
    from tunesmith.predictor import Predictor, saved_task_state, within_position_limit
    from tunesmith.runs import run_config
    from tunesmith.tasks import get_task

    path = Path(path)
    fmt = fmt or read_manifest(path)["format"]
    if fmt == "hf":
        return Predictor.from_run(path)
    folder = path / MODEL_FOLDER
    model = OnnxModel(folder / ONNX_FILE, threads)
    config = within_position_limit(run_config(path), load_config(folder, "run"))
    task = get_task(config, saved_task_state(path))
    tokenizer = load_tokenizer(folder, "run")
    tokenizer.truncation_side = config.training.truncation_side
    return Predictor(model, tokenizer, config, task)
