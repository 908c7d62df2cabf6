import json
from pathlib import Path

import pytest
import torch
import yaml
from pydantic import ValidationError
from torch import nn
from transformers import BertConfig, DistilBertConfig, GPT2Config, LlamaConfig

import tunesmith
from tunesmith.config import RegularizationConfig, RunConfig, TrainingConfig, validate_config
from tunesmith.errors import UserError
from tunesmith.models.dropout import dropout_fields
from tunesmith.speedups import apply_speedups
from tunesmith.speedups.dropout import SlicedMaskDropout
from tunesmith.tasks import get_task

OVERRIDES = RegularizationConfig(hidden_dropout=0.2, attention_dropout=0.3, classifier_dropout=0.4)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            BertConfig(),
            {"hidden_dropout_prob": 0.2, "attention_probs_dropout_prob": 0.3, "classifier_dropout": 0.4},
        ),
        (DistilBertConfig(), {"dropout": 0.2, "attention_dropout": 0.3, "seq_classif_dropout": 0.4}),
    ],
    ids=["bert", "distilbert"],
)
def test_each_override_names_the_architectures_own_field(config, expected: dict) -> None:
    assert dropout_fields(config, OVERRIDES, "m") == expected


def test_gpt2_takes_hidden_and_attention_rates_and_no_classifier_rate() -> None:
    fields = dropout_fields(GPT2Config(), RegularizationConfig(hidden_dropout=0.2, attention_dropout=0.3), "gpt2")
    assert fields == {"resid_pdrop": 0.2, "embd_pdrop": 0.2, "attn_pdrop": 0.3}
    with pytest.raises(UserError, match=r"regularization.classifier_dropout cannot apply to backbone gpt2 \(model"):
        dropout_fields(GPT2Config(), RegularizationConfig(classifier_dropout=0.2), "gpt2")


def test_an_override_the_backbone_has_no_field_for_is_an_error_naming_it() -> None:
    assert dropout_fields(LlamaConfig(), RegularizationConfig(attention_dropout=0.1), "x") == {"attention_dropout": 0.1}
    with pytest.raises(UserError, match="hidden_dropout cannot apply to backbone my-llama .model type llama"):
        dropout_fields(LlamaConfig(), RegularizationConfig(hidden_dropout=0.1), "my-llama")


def loaded(tiny_model: str, regularization: dict) -> nn.Module:
    cfg = RunConfig(model=tiny_model, data={"train": "x.csv"}, regularization=regularization)
    task = get_task(cfg, {"names": ["neg", "pos"]})
    return task.load_model(tiny_model)


def rates(model: nn.Module) -> dict[str, float]:
    bert = model.bert
    return {
        "embeddings": bert.embeddings.dropout.p,
        "attention": bert.encoder.layer[0].attention.self.dropout.p,
        "attention_output": bert.encoder.layer[0].attention.output.dropout.p,
        "output": bert.encoder.layer[1].output.dropout.p,
        "classifier": model.dropout.p,
    }


def test_the_rates_reach_the_models_modules(tiny_model: str) -> None:
    # The tiny BERT was saved without dropout.
    assert set(rates(loaded(tiny_model, {})).values()) == {0.0}
    model = loaded(tiny_model, OVERRIDES.model_dump())
    assert rates(model) == {
        "embeddings": 0.2, "attention": 0.3, "attention_output": 0.2, "output": 0.2, "classifier": 0.4
    }  # fmt: skip
    # No classifier rate: BERT's head takes the hidden one.
    assert rates(loaded(tiny_model, {"hidden_dropout": 0.25}))["classifier"] == 0.25
    assert model.config.hidden_dropout_prob == 0.2 and model.config.classifier_dropout == 0.4


def test_the_cpu_dropout_patches_keep_the_overridden_rates(tiny_model: str) -> None:
    model = loaded(tiny_model, OVERRIDES.model_dump())
    applied = apply_speedups(model, TrainingConfig(), "cpu")
    assert "sliced_mask_dropout" in applied
    patched = {name: module.p for name, module in model.named_modules() if isinstance(module, SlicedMaskDropout)}
    assert patched and set(patched.values()) == {0.2, 0.3, 0.4}
    assert all(rate == 0.3 for name, rate in patched.items() if name.endswith("attention.self.dropout"))
    # Rates of 0 under the patches: training forwards are the evaluation forward, no mask drawn.
    still = loaded(tiny_model, {"hidden_dropout": 0.0, "attention_dropout": 0.0, "classifier_dropout": 0.0})
    apply_speedups(still, TrainingConfig(), "cpu")
    batch = {"input_ids": torch.tensor([[101, 2307, 2028, 102, 0]]), "attention_mask": torch.tensor([[1, 1, 1, 1, 0]])}
    with torch.no_grad():
        evaluated = still.eval()(**batch).logits
        trained = still.train()(**batch).logits
    torch.testing.assert_close(trained, evaluated)


def test_a_run_with_overrides_saves_them_and_reloads_for_predict(tiny_config: dict) -> None:
    tiny_config["training"]["epochs"] = 1
    tiny_config["regularization"] = {"hidden_dropout": 0.05, "attention_dropout": 0.15}
    run = tunesmith.finetune(tiny_config)
    saved = yaml.safe_load((run.path / "config.yaml").read_text())
    assert saved["regularization"] == {
        "hidden_dropout": 0.05, "attention_dropout": 0.15, "classifier_dropout": None, "l2sp": 0.0
    }  # fmt: skip
    assert validate_config(saved, "config.yaml", saved=True).model_dump(mode="json") == saved
    model_config = json.loads((Path(run.path) / "model" / "config.json").read_text())
    assert (model_config["hidden_dropout_prob"], model_config["attention_probs_dropout_prob"]) == (0.05, 0.15)
    assert tunesmith.load(run.path).predict(["a superb one"])[0]["label"] in {"neg", "pos"}


def test_overrides_are_refused_where_the_method_trains_no_task_model() -> None:
    with pytest.raises(ValidationError, match="regularization.hidden_dropout, training.optimizer apply to method"):
        RunConfig(
            data={"train": "x.csv"},
            method="contrastive",
            regularization={"hidden_dropout": 0.2},
            training={"optimizer": "sgd"},
        )
    with pytest.raises(ValidationError, match="hidden_dropout"):
        RegularizationConfig(hidden_dropout=1.0)


def test_the_ner_head_takes_the_classifier_rate(tiny_model: str) -> None:
    cfg = RunConfig.model_validate(
        {"task": "ner", "data": {"train": "train.conll"}, "regularization": {"classifier_dropout": 0.35}}
    )
    model = get_task(cfg, {"names": ["O", "B-PER", "I-PER"], "scheme": "iob2"}).load_model(tiny_model)
    assert model.dropout.p == 0.35 and model.bert.embeddings.dropout.p == 0.0


def test_a_causal_decoder_takes_its_own_fields_and_refuses_what_it_lacks(tiny_gpt2: str, tiny_llama: str) -> None:
    def causal(regularization: dict) -> RunConfig:
        return RunConfig.model_validate(
            {"task": "causal", "data": {"train": "train.jsonl"}, "regularization": regularization}
        )

    gpt2 = get_task(causal({"hidden_dropout": 0.2, "attention_dropout": 0.3})).load_model(tiny_gpt2)
    assert gpt2.transformer.drop.p == 0.2 and gpt2.transformer.h[0].mlp.dropout.p == 0.2
    assert gpt2.transformer.h[0].attn.attn_dropout.p == 0.3
    llama = get_task(causal({"attention_dropout": 0.25})).load_model(tiny_llama)
    assert llama.config.attention_dropout == 0.25
    with pytest.raises(UserError, match="hidden_dropout cannot apply to backbone"):
        get_task(causal({"hidden_dropout": 0.2})).load_model(tiny_llama)
