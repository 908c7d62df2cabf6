import pytest
import torch
from transformers import AutoModelForSequenceClassification, BertConfig, BertForSequenceClassification

import tunesmith
from tunesmith.config import FreezeOptions, GradualOptions, LayerDecayOptions, TrainingConfig
from tunesmith.errors import UserError
from tunesmith.strategies import layerwise
from tunesmith.train.optim import build_optimizer


def three_layer_bert() -> BertForSequenceClassification:
    config = BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=3, num_attention_heads=2, intermediate_size=16)
    return BertForSequenceClassification(config)


def trainable(model) -> set[str]:
    return {name for name, p in model.named_parameters() if p.requires_grad}


def prefixes(names: set[str]) -> set[str]:
    """bert.encoder.layer.1.attention... -> layer.1; bert.embeddings... -> embeddings; else the top module."""
    out = set()
    for name in names:
        parts = name.split(".")
        if "layer" in parts:
            out.add(f"layer.{parts[parts.index('layer') + 1]}")
        elif "embeddings" in parts:
            out.add("embeddings")
        else:
            out.add("pooler" if "pooler" in parts else parts[0])
    return out


def test_freeze_defaults_to_embeddings_and_bottom_half() -> None:
    model = layerwise.freeze(three_layer_bert(), FreezeOptions())
    assert prefixes(trainable(model)) == {"layer.1", "layer.2", "pooler", "classifier"}


def test_freeze_top_layers_trains_only_those_and_the_head() -> None:
    model = layerwise.freeze(three_layer_bert(), FreezeOptions(top_layers=1))
    assert prefixes(trainable(model)) == {"layer.2", "pooler", "classifier"}
    model = layerwise.freeze(three_layer_bert(), FreezeOptions(bottom_layers=0, embeddings=False))
    assert prefixes(trainable(model)) == {"embeddings", "layer.0", "layer.1", "layer.2", "pooler", "classifier"}


def test_freezing_more_layers_than_the_model_has_is_a_clear_error() -> None:
    with pytest.raises(UserError, match=r"freeze.bottom_layers is 5, but this model has 3 layers"):
        layerwise.freeze(three_layer_bert(), FreezeOptions(bottom_layers=5))


def test_head_only_and_bitfit() -> None:
    assert prefixes(trainable(layerwise.head_only(three_layer_bert()))) == {"pooler", "classifier"}
    bitfit = trainable(layerwise.bitfit(three_layer_bert()))
    assert all(name.endswith(".bias") or name.startswith(("classifier", "bert.pooler")) for name in bitfit)
    assert "bert.encoder.layer.0.attention.self.query.bias" in bitfit
    assert "bert.encoder.layer.0.attention.self.query.weight" not in bitfit


@pytest.mark.parametrize(
    ("step", "every", "expected"),
    [
        (0, None, {"layer.2", "pooler", "classifier"}),
        (9, None, {"layer.2", "pooler", "classifier"}),
        (10, None, {"layer.1", "layer.2", "pooler", "classifier"}),
        (25, None, {"layer.0", "layer.1", "layer.2", "pooler", "classifier"}),
        (30, None, {"embeddings", "layer.0", "layer.1", "layer.2", "pooler", "classifier"}),
        (3, 3, {"layer.1", "layer.2", "pooler", "classifier"}),
    ],
)
def test_gradual_unfreezing_opens_one_layer_per_stage_from_the_top(step, every, expected) -> None:
    model = three_layer_bert()
    layerwise.unfreeze_gradually(model, step, steps_per_epoch=10, options=GradualOptions(every_steps=every))
    assert prefixes(trainable(model)) == expected


def test_layer_decay_rates_fall_from_the_top_layer_down() -> None:
    model = three_layer_bert()
    factor = layerwise.layer_decay(model, LayerDecayOptions(decay=0.5))
    optimizer = build_optimizer(model, TrainingConfig(learning_rate=1.0), factor)
    rate = {
        name: group["lr"]
        for group in optimizer.param_groups
        for name, p in model.named_parameters()
        if any(p is q for q in group["params"])
    }
    assert rate["classifier.weight"] == rate["bert.pooler.dense.weight"] == 1.0
    assert rate["bert.encoder.layer.2.output.dense.weight"] == 1.0
    assert rate["bert.encoder.layer.1.output.dense.weight"] == 0.5
    assert rate["bert.encoder.layer.0.attention.self.query.bias"] == 0.25
    assert rate["bert.embeddings.word_embeddings.weight"] == rate["bert.embeddings.LayerNorm.bias"] == 0.125


def _weights(path) -> dict[str, torch.Tensor]:
    model = AutoModelForSequenceClassification.from_pretrained(path)
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def test_freeze_leaves_frozen_weights_untouched_through_training(tiny_config: dict, tiny_model: str) -> None:
    run = tunesmith.finetune({**tiny_config, "strategy": "freeze", "freeze": {"bottom_layers": 1}})
    before, after = _weights(tiny_model), _weights(run.path / "model")
    for name in before:
        if name.startswith("bert.embeddings") or ".layer.0." in name:
            assert torch.equal(before[name], after[name]), name
    assert not torch.equal(
        before["bert.encoder.layer.1.output.dense.weight"], after["bert.encoder.layer.1.output.dense.weight"]
    )
    counts = run.metrics["training"]
    assert counts["trainable_parameters"] < counts["total_parameters"]


def test_gradual_unfreezing_trains_the_bottom_layer_only_once_its_stage_comes(
    tiny_config: dict, tiny_model: str
) -> None:
    # 64 training rows in batches of 8: stage 1 (layer 0 too) from step 8 on. No evaluations, so
    # no restoring of an earlier best model.
    tiny_config["training"]["eval_each_epoch"] = False
    one_epoch = tunesmith.finetune(
        {**tiny_config, "strategy": "gradual", "training": {**tiny_config["training"], "epochs": 1}}
    )
    before, after = _weights(tiny_model), _weights(one_epoch.path / "model")
    assert torch.equal(
        before["bert.encoder.layer.0.output.dense.weight"], after["bert.encoder.layer.0.output.dense.weight"]
    )
    assert not torch.equal(
        before["bert.encoder.layer.1.output.dense.weight"], after["bert.encoder.layer.1.output.dense.weight"]
    )
    tiny_config["output_dir"] += "-2"
    two_epochs = tunesmith.finetune(
        {**tiny_config, "strategy": "gradual", "training": {**tiny_config["training"], "epochs": 2}}
    )
    later = _weights(two_epochs.path / "model")
    assert not torch.equal(
        before["bert.encoder.layer.0.output.dense.weight"], later["bert.encoder.layer.0.output.dense.weight"]
    )
    assert torch.equal(
        before["bert.embeddings.word_embeddings.weight"], later["bert.embeddings.word_embeddings.weight"]
    )
