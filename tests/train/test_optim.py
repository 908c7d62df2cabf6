import pytest
from transformers import BertConfig, BertForSequenceClassification

from tunesmith.config import TrainingConfig
from tunesmith.train.optim import build_optimizer, build_scheduler


def tiny_bert() -> BertForSequenceClassification:
    config = BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16)
    return BertForSequenceClassification(config)


def named_groups(model, optimizer) -> list[tuple[float, float, set[str]]]:
    names = {id(p): n for n, p in model.named_parameters()}
    return [(g["lr"], g["weight_decay"], {names[id(p)] for p in g["params"]}) for g in optimizer.param_groups]


def test_no_weight_decay_on_biases_and_layer_norms() -> None:
    model = tiny_bert()
    groups = named_groups(model, build_optimizer(model, TrainingConfig(weight_decay=0.1)))
    decayed = set().union(*(names for _, decay, names in groups if decay == 0.1))
    plain = set().union(*(names for _, decay, names in groups if decay == 0.0))
    assert all(not n.endswith("bias") and "LayerNorm" not in n for n in decayed)
    assert "bert.embeddings.LayerNorm.weight" in plain and "classifier.bias" in plain
    assert len(decayed) + len(plain) == len(list(model.parameters()))


def test_head_learning_rate_covers_classifier_and_pooler() -> None:
    model = tiny_bert()
    groups = named_groups(model, build_optimizer(model, TrainingConfig(learning_rate=1e-5, head_learning_rate=1e-3)))
    head = set().union(*(names for rate, _, names in groups if rate == 1e-3))
    assert head == {"classifier.weight", "classifier.bias", "bert.pooler.dense.weight", "bert.pooler.dense.bias"}
    assert {rate for rate, _, _ in groups} == {1e-5, 1e-3}
    same = named_groups(model, build_optimizer(model, TrainingConfig(learning_rate=1e-5)))
    assert {rate for rate, _, _ in same} == {1e-5}


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


def test_adamw_is_fused_on_the_cpu() -> None:
    optimizer = build_optimizer(tiny_bert(), TrainingConfig())
    assert optimizer.defaults["fused"] is True
