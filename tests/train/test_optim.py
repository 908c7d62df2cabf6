import pytest
from transformers import BertConfig, BertForSequenceClassification

from tunesmith.config import TrainingConfig
from tunesmith.train.optim import build_optimizer, build_scheduler


def tiny_bert() -> BertForSequenceClassification:
    config = BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16)
    return BertForSequenceClassification(config)


def test_no_weight_decay_on_biases_and_layer_norms() -> None:
    model = tiny_bert()
    optimizer = build_optimizer(model, TrainingConfig(weight_decay=0.1))
    decayed, plain = optimizer.param_groups
    names = {id(p): n for n, p in model.named_parameters()}
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    assert all(not names[id(p)].endswith("bias") and "LayerNorm" not in names[id(p)] for p in decayed["params"])
    assert any("LayerNorm.weight" in names[id(p)] for p in plain["params"])
    assert len(decayed["params"]) + len(plain["params"]) == len(list(model.parameters()))


def test_frozen_parameters_are_not_optimised() -> None:
    model = tiny_bert()
    model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    optimizer = build_optimizer(model, TrainingConfig())
    assert all(
        p is not model.bert.embeddings.word_embeddings.weight for g in optimizer.param_groups for p in g["params"]
    )


def test_linear_warmup_then_linear_decay() -> None:
    cfg = TrainingConfig(learning_rate=1.0, warmup_ratio=0.1)
    optimizer = build_optimizer(tiny_bert(), cfg)
    scheduler = build_scheduler(optimizer, cfg, total_steps=100)
    rates = []
    for _ in range(100):
        rates.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    assert rates[0] == 0.0 and rates[5] == pytest.approx(0.5) and rates[10] == pytest.approx(1.0)
    assert rates[55] == pytest.approx(0.5) and scheduler.get_last_lr()[0] == 0.0
