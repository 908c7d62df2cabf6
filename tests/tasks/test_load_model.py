"""What every task's `load_model` promises, whatever the checkpoint's own dtype."""

from pathlib import Path

import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from tunesmith.config import RunConfig
from tunesmith.tasks import get_task

STATES = {
    "classification": {"names": ["neg", "pos"]},
    "regression": {"names": ["score"], "shift": 0.0, "scale": 1.0},
    "multilabel": {"names": ["food", "sport"], "thresholds": [0.5, 0.5]},
    "ner": {"names": ["O", "B-PER", "I-PER"], "scheme": "iob2"},
}


@pytest.fixture(scope="module")
def half_precision_backbone(tiny_model: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The tiny BERT saved in fp16, as many hub checkpoints are stored."""
    folder = tmp_path_factory.mktemp("tiny-bert-fp16")
    AutoModel.from_pretrained(tiny_model).half().save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_model).save_pretrained(folder)
    return str(folder)


@pytest.mark.parametrize("task_name", sorted(STATES))
def test_a_half_precision_checkpoint_is_loaded_with_fp32_weights(task_name: str, half_precision_backbone: str) -> None:
    # Left in fp16, AdamW's small updates would round away and mixed precision would refuse to unscale.
    assert AutoModel.from_pretrained(half_precision_backbone).dtype == torch.float16
    cfg = RunConfig.model_validate({"task": task_name, "data": {"train": "train.csv"}})
    model = get_task(cfg, STATES[task_name]).load_model(half_precision_backbone)
    assert {parameter.dtype for parameter in model.parameters()} == {torch.float32}


def test_a_run_from_a_half_precision_checkpoint_saves_fp32_weights(
    tiny_config: dict, half_precision_backbone: str
) -> None:
    import tunesmith

    tiny_config["model"] = half_precision_backbone
    tiny_config["training"]["epochs"] = 12
    run = tunesmith.finetune(tiny_config)
    assert run.metrics["test"]["accuracy"] >= 0.9
    saved = AutoModel.from_pretrained(Path(run.path) / "model")
    assert saved.dtype == torch.float32
