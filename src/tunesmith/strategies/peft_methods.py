"""The parameter-efficient methods of the peft library: LoRA, AdaLoRA, IA3, prefix, prompt and P-tuning.

Each builds a peft config from its section of the run config; peft wraps the model.
The task head always trains and is saved with the adapter (`modules_to_save`): without
it a reloaded adapter would sit under a random head.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
)
from torch import nn

from tunesmith.config import RunConfig
from tunesmith.errors import UserError
from tunesmith.strategies.anatomy import backbone

# Methods whose trained weights fold into the base weights, so that plain transformers loads the result.
MERGEABLE = {"lora", "adalora", "ia3"}


def wrap(model: nn.Module, total_steps: int, cfg: RunConfig) -> nn.Module:
    """The model wrapped by peft with the configured method; only the adapter and the head train."""
    if cfg.task == "ner" and cfg.strategy in {"prompt", "ptuning"}:
        raise UserError(
            f"strategy: {cfg.strategy} prepends virtual tokens to the input, which token classification (NER) "
            "would have to tag as well. For NER use lora, adalora, ia3 or prefix."
        )
    return get_peft_model(model, peft_config(model, cfg, total_steps))


def peft_config(model: nn.Module, cfg: RunConfig, total_steps: int) -> PeftConfig:
    task_type = TaskType.TOKEN_CLS if cfg.task == "ner" else TaskType.SEQ_CLS
    # peft adds the classifier itself; the pooler (untrained in sentence-embedding checkpoints) joins it.
    # Named by its linear layer: peft's IA3 cannot unmerge a saved module that is not a layer itself.
    pooler = getattr(backbone(model), "pooler", None)
    head = ["pooler.dense"] if isinstance(getattr(pooler, "dense", None), nn.Linear) else []
    # ner.word_case's token-type rows are new: frozen, they would stay copies of type 0.
    case_types = ["token_type_embeddings"] if cfg.task == "ner" and cfg.ner.word_case else []
    head += case_types
    method = cfg.strategy
    if method == "lora":
        options = cfg.lora
        return LoraConfig(
            task_type=task_type,
            r=options.rank,
            lora_alpha=options.alpha,
            lora_dropout=options.dropout,
            target_modules=options.target_modules or backbone_linear_layers(model),
            modules_to_save=(head if options.target_modules else case_types) or None,
            use_dora=options.use_dora,
            bias=options.bias,
        )
    if method == "adalora":
        options = cfg.adalora
        return AdaLoraConfig(
            task_type=task_type,
            init_r=options.initial_rank,
            target_r=options.target_rank,
            lora_alpha=options.alpha,
            lora_dropout=options.dropout,
            target_modules=options.target_modules,
            total_step=total_steps,
            tinit=int(options.warmup_fraction * total_steps),
            tfinal=int(options.final_fraction * total_steps),
            modules_to_save=head or None,
        )
    if method == "ia3":
        options = cfg.ia3
        return IA3Config(
            task_type=task_type,
            target_modules=options.target_modules,
            feedforward_modules=options.feedforward_modules,
            modules_to_save=head or None,
        )
    options = getattr(cfg, method)
    if method == "prefix":
        # With encoder_hidden_size, the prefixes come out of a small MLP (the paper's reparametrisation).
        projection = {"prefix_projection": True, "encoder_hidden_size": options.encoder_hidden_size}
        return PrefixTuningConfig(
            task_type=task_type,
            num_virtual_tokens=options.virtual_tokens,
            modules_to_save=head or None,
            **(projection if options.encoder_hidden_size else {}),
        )
    if method == "ptuning":
        return PromptEncoderConfig(
            task_type=task_type,
            num_virtual_tokens=options.virtual_tokens,
            encoder_hidden_size=options.encoder_hidden_size or 128,
            modules_to_save=head or None,
        )
    initial = {}
    if options.init_text:
        initial = {
            "prompt_tuning_init": PromptTuningInit.TEXT,
            "prompt_tuning_init_text": options.init_text,
            "tokenizer_name_or_path": model.config.name_or_path,
        }
    return PromptTuningConfig(
        task_type=task_type, num_virtual_tokens=options.virtual_tokens, modules_to_save=head or None, **initial
    )


def backbone_linear_layers(model: nn.Module) -> list[str]:
    """Every linear layer of the encoder, pooler included: LoRA's default targets here.

    The head is left out because it trains whole (`modules_to_save`); peft's own "all-linear"
    would take the classifier of a token-classification model too.
    """
    encoder = backbone(model)
    prefix = getattr(model, "base_model_prefix", "")
    return [f"{prefix}.{name}" for name, module in encoder.named_modules() if isinstance(module, nn.Linear)]


def update_rank_budget(model: nn.Module, step: int) -> None:
    """AdaLoRA: after the optimizer step and before gradients are cleared, reallocate ranks."""
    model.base_model.update_and_allocate(step)


def merged(model: Any) -> nn.Module:
    """A plain transformers model with the adapter folded into its weights (and the trained head)."""
    return model.merge_and_unload()


def load(base: nn.Module, folder: Path) -> nn.Module:
    return PeftModel.from_pretrained(base, folder)
