"""The parameter-efficient methods of the peft library: LoRA, AdaLoRA, IA3, prefix, prompt and P-tuning.

Each builds a peft config from its section of the run config; peft wraps the model.
The task head always trains and is saved with the adapter (`modules_to_save`): without
it a reloaded adapter would sit under a random head.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import peft
import transformers
from peft import (
    AdaLoraConfig,
    IA3Config,
    LoraConfig,
    PeftConfig,
    PeftModel,
    PrefixTuningConfig,
    PromptEncoderConfig,
    PromptTuningConfig,
    PromptTuningInit,
    TaskType,
    get_peft_model,
    get_peft_model_state_dict,
)
from peft.utils import SAFETENSORS_WEIGHTS_NAME
from torch import nn
from transformers import AutoConfig
from transformers.models.auto.modeling_auto import MODEL_MAPPING

from tunesmith.config import RunConfig
from tunesmith.errors import UserError
from tunesmith.models.loading import FIX, check_adapter_keys, first_line
from tunesmith.strategies.anatomy import backbone

if TYPE_CHECKING:
    from tunesmith.tasks import TaskInfo
    from tunesmith.tasks.protocol import Task

# Methods whose trained weights fold into the base weights, so that plain transformers loads the result.
MERGEABLE = {"lora", "adalora", "ia3"}


# Methods that prepend virtual tokens to the input, which a token-level task would have to tag as well.
PREPENDING = {"prompt", "ptuning"}


def wrap(model: nn.Module, total_steps: int, cfg: RunConfig, task: Task) -> nn.Module:
    """The model wrapped by peft with the configured method; only the adapter and the head train."""
    return get_peft_model(model, peft_config(model, cfg, total_steps, task))


def check_supported(method: str, task: TaskInfo, backbone_path: str) -> None:
    """Refuse, before any work, a method that cannot serve this task or backbone."""
    if task.token_level and method in PREPENDING:
        raise UserError(
            f"strategy: {method} prepends virtual tokens to the input, which a token-level task ({task.name}) "
            "would have to tag as well. For token classification use lora, adalora or ia3."
        )
    if method == "prefix" and not _takes_past_key_values(backbone_path):
        raise UserError(
            f"strategy: prefix needs a model whose forward takes past_key_values, and {backbone_path}'s does "
            f"not under transformers {transformers.__version__} (BERT-style encoders now take a `cache`, "
            f"which peft {peft.__version__} does not fill). Use prompt or ptuning for a virtual-token method, "
            "or lora."
        )


def _takes_past_key_values(backbone_path: str) -> bool:
    """What peft's prefix tuning asks of the base model (peft_model.py raises "Model does not support
    past key values" otherwise): the base model's forward takes `past_key_values`."""
    config = AutoConfig.from_pretrained(backbone_path, trust_remote_code=False)
    try:
        base_class = MODEL_MAPPING[type(config)]
    except KeyError:
        return True  # an architecture transformers cannot name here: leave the verdict to peft
    return "past_key_values" in inspect.signature(base_class.forward).parameters


@dataclass(frozen=True)
class _Trained:
    """What every method's config needs besides its own options."""

    task_type: TaskType
    # Modules that train whole beside the adapter, saved with it: the pooler and what the task adds.
    whole: list[str]
    # What the task adds alone (for LoRA on chosen layers, the pooler stays frozen too).
    new: list[str]


def peft_config(model: nn.Module, cfg: RunConfig, total_steps: int, task: Task) -> PeftConfig:
    # peft adds the classifier itself; the pooler (untrained in sentence-embedding checkpoints) joins it.
    # Named by its linear layer: peft's IA3 cannot unmerge a saved module that is not a layer itself.
    pooler = getattr(backbone(model), "pooler", None)
    head = ["pooler.dense"] if isinstance(getattr(pooler, "dense", None), nn.Linear) else []
    new = task.new_trainable_modules()
    trained = _Trained(TaskType[task.info.peft_task_type], head + new, new)
    return _CONFIGS[cfg.strategy](model, cfg, total_steps, trained)


def _lora(model: nn.Module, cfg: RunConfig, total_steps: int, trained: _Trained) -> PeftConfig:
    options = cfg.lora
    return LoraConfig(
        task_type=trained.task_type,
        r=options.rank,
        lora_alpha=options.alpha,
        lora_dropout=options.dropout,
        target_modules=options.target_modules or backbone_linear_layers(model),
        modules_to_save=(trained.whole if options.target_modules else trained.new) or None,
        use_dora=options.use_dora,
        bias=options.bias,
    )


def _adalora(model: nn.Module, cfg: RunConfig, total_steps: int, trained: _Trained) -> PeftConfig:
    options = cfg.adalora
    return AdaLoraConfig(
        task_type=trained.task_type,
        init_r=options.initial_rank,
        target_r=options.target_rank,
        lora_alpha=options.alpha,
        lora_dropout=options.dropout,
        target_modules=options.target_modules,
        total_step=total_steps,
        tinit=int(options.warmup_fraction * total_steps),
        tfinal=int(options.final_fraction * total_steps),
        modules_to_save=trained.whole or None,
    )


def _ia3(model: nn.Module, cfg: RunConfig, total_steps: int, trained: _Trained) -> PeftConfig:
    options = cfg.ia3
    return IA3Config(
        task_type=trained.task_type,
        target_modules=options.target_modules,
        feedforward_modules=options.feedforward_modules,
        modules_to_save=trained.whole or None,
    )


def _prefix(model: nn.Module, cfg: RunConfig, total_steps: int, trained: _Trained) -> PeftConfig:
    options = cfg.prefix
    # With encoder_hidden_size, the prefixes come out of a small MLP (the paper's reparametrisation).
    projection = {"prefix_projection": True, "encoder_hidden_size": options.encoder_hidden_size}
    return PrefixTuningConfig(
        task_type=trained.task_type,
        num_virtual_tokens=options.virtual_tokens,
        modules_to_save=trained.whole or None,
        **(projection if options.encoder_hidden_size else {}),
    )


def _ptuning(model: nn.Module, cfg: RunConfig, total_steps: int, trained: _Trained) -> PeftConfig:
    options = cfg.ptuning
    return PromptEncoderConfig(
        task_type=trained.task_type,
        num_virtual_tokens=options.virtual_tokens,
        encoder_hidden_size=options.encoder_hidden_size or 128,
        modules_to_save=trained.whole or None,
    )


def _prompt(model: nn.Module, cfg: RunConfig, total_steps: int, trained: _Trained) -> PeftConfig:
    options = cfg.prompt
    initial = {}
    if options.init_text:
        initial = {
            "prompt_tuning_init": PromptTuningInit.TEXT,
            "prompt_tuning_init_text": options.init_text,
            "tokenizer_name_or_path": model.config.name_or_path,
        }
    return PromptTuningConfig(
        task_type=trained.task_type,
        num_virtual_tokens=options.virtual_tokens,
        modules_to_save=trained.whole or None,
        **initial,
    )


_CONFIGS = {
    "lora": _lora,
    "adalora": _adalora,
    "ia3": _ia3,
    "prefix": _prefix,
    "ptuning": _ptuning,
    "prompt": _prompt,
}


def backbone_linear_layers(model: nn.Module) -> list[str]:
    """Every linear layer of the encoder (or decoder), pooler included: LoRA's default targets here.

    The head is left out because it trains whole (`modules_to_save`); peft's own "all-linear"
    would take the classifier of a token-classification model too.
    """
    from transformers.pytorch_utils import Conv1D  # GPT-2's linear layers, stored transposed

    encoder = backbone(model)
    prefix = getattr(model, "base_model_prefix", "")
    linear = (nn.Linear, Conv1D)
    return [f"{prefix}.{name}" for name, module in encoder.named_modules() if isinstance(module, linear)]


def update_rank_budget(model: nn.Module, step: int) -> None:
    """AdaLoRA: after the optimizer step and before gradients are cleared, reallocate ranks."""
    model.base_model.update_and_allocate(step)


def merged(model: Any) -> nn.Module:
    """A plain transformers model with the adapter folded into its weights (and the trained head)."""
    return model.merge_and_unload()


def load(base: nn.Module, folder: Path) -> nn.Module:
    """The adapter of `folder` on `base`; every weight the adapter needs must be in the folder.

    peft loads what it finds and warns about missing adapter weights only (a missing head it does not
    mention), so the keys are compared here with those a save of the loaded model would write.
    """
    from safetensors import safe_open

    try:
        model = PeftModel.from_pretrained(base, folder)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise UserError(
            f"{folder} could not be loaded as a peft adapter ({type(exc).__name__}: {first_line(exc)}). {FIX['run']}"
        ) from None
    with safe_open(str(folder / SAFETENSORS_WEIGHTS_NAME), framework="pt") as handle:
        saved = set(handle.keys())
    expected = set(get_peft_model_state_dict(model))
    check_adapter_keys(folder / SAFETENSORS_WEIGHTS_NAME, missing=expected - saved, unknown=saved - expected)
    return model
