"""Dropout overrides (`regularization:`): which fields of a backbone's config hold each rate.

The rates go into the config before the model is built (from_pretrained's config keyword arguments), so every
dropout module starts with them and the run's model/config.json records them: a reloaded run is the same model.
Architectures name the rates differently; a rate that the backbone's config has no field for is an error naming
the backbone, since an override silently dropped would be a run that is not what it says.
"""

from __future__ import annotations

from tunesmith.config import RegularizationConfig
from tunesmith.errors import UserError
from tunesmith.models.loading import load_config

# Each override's config fields, in the families' own names; every field the config has is set.
FIELDS: dict[str, tuple[str, ...]] = {
    # BERT, RoBERTa, XLM-R, ELECTRA, DeBERTa: hidden_dropout_prob; DistilBERT, BART: dropout;
    # GPT-2: resid_pdrop and embd_pdrop; Falcon, Bloom: hidden_dropout.
    "hidden_dropout": ("hidden_dropout_prob", "dropout", "resid_pdrop", "embd_pdrop", "hidden_dropout"),
    # BERT family: attention_probs_dropout_prob; DistilBERT, BART, Llama, Qwen, Mistral: attention_dropout;
    # GPT-2: attn_pdrop.
    "attention_dropout": ("attention_probs_dropout_prob", "attention_dropout", "attn_pdrop"),
    # BERT, RoBERTa, ELECTRA, BART: classifier_dropout; DistilBERT's sequence classifier: seq_classif_dropout.
    "classifier_dropout": ("classifier_dropout", "seq_classif_dropout"),
}


def dropout_fields(config: object, regularization: RegularizationConfig, backbone: str) -> dict[str, float]:
    """The config fields (and rates) that carry `regularization`'s overrides for a model of `config`."""
    fields: dict[str, float] = {}
    for override, rate in regularization.overrides.items():
        found = [name for name in FIELDS[override] if hasattr(config, name)]
        if not found:
            model_type = getattr(config, "model_type", None) or type(config).__name__
            raise UserError(
                f"regularization.{override} cannot apply to backbone {backbone} (model type {model_type}): its "
                f"config has none of the fields that hold this rate ({', '.join(FIELDS[override])}). Drop "
                f"regularization.{override}, or use a backbone that has such a dropout."
            )
        fields.update(dict.fromkeys(found, rate))
    return fields


def dropout_options(
    backbone: str, regularization: RegularizationConfig, shown_as: str | None = None
) -> dict[str, float]:
    """from_pretrained's keyword arguments that set the overrides on `backbone` (a folder or hub id);
    none when nothing is overridden (the config is then not read)."""
    if not regularization.overrides:
        return {}
    return dropout_fields(load_config(backbone, "backbone"), regularization, shown_as or backbone)
