import io
import math

import pytest
import torch
from pydantic import ValidationError
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    get_constant_schedule_with_warmup,
    get_cosine_schedule_with_warmup,
    get_cosine_with_hard_restarts_schedule_with_warmup,
    get_linear_schedule_with_warmup,
    get_polynomial_decay_schedule_with_warmup,
)

from tunesmith.config import TrainingConfig, validate_config
from tunesmith.errors import UserError
from tunesmith.train.optim import build_optimizer, build_scheduler, refit_scheduler


def tiny_bert() -> BertForSequenceClassification:
    config = BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16)
    return BertForSequenceClassification(config)


def named_groups(model, optimizer) -> list[tuple[float, float, set[str]]]:
    names = {id(p): n for n, p in model.named_parameters()}
    return [(g["lr"], g["weight_decay"], {names[id(p)] for p in g["params"]}) for g in optimizer.param_groups]


def undecayed(model, cfg: TrainingConfig) -> set[str]:
    return set().union(*(names for _, decay, names in named_groups(model, build_optimizer(model, cfg)) if decay == 0))


def test_no_weight_decay_on_biases_and_layer_norms() -> None:
    model = tiny_bert()
    groups = named_groups(model, build_optimizer(model, TrainingConfig(weight_decay=0.1)))
    decayed = set().union(*(names for _, decay, names in groups if decay == 0.1))
    plain = set().union(*(names for _, decay, names in groups if decay == 0.0))
    assert all(not n.endswith("bias") and "LayerNorm" not in n for n in decayed)
    assert "bert.embeddings.LayerNorm.weight" in plain and "classifier.bias" in plain
    assert len(decayed) + len(plain) == len(list(model.parameters()))


@pytest.mark.parametrize(
    "model",
    [
        tiny_bert,
        lambda: GPT2LMHeadModel(GPT2Config(vocab_size=50, n_embd=8, n_layer=1, n_head=2, n_positions=16)),
        lambda: LlamaForCausalLM(
            LlamaConfig(vocab_size=50, hidden_size=8, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2)
        ),
    ],
    ids=["bert", "gpt2", "llama"],
)
def test_the_default_exclusions_are_the_vectors_as_before(model) -> None:
    # Before no_decay, the rule was "no decay on parameters of fewer than 2 dimensions".
    model = model()
    vectors = {name for name, parameter in model.named_parameters() if parameter.ndim < 2}
    assert undecayed(model, TrainingConfig(weight_decay=0.1)) == vectors


def test_no_decay_patterns_choose_the_exclusions() -> None:
    model = tiny_bert()
    only_biases = undecayed(model, TrainingConfig(weight_decay=0.1, no_decay=["BIAS"]))
    assert only_biases == {name for name, _ in model.named_parameters() if name.endswith("bias")}
    assert undecayed(model, TrainingConfig(weight_decay=0.1, no_decay=[])) == set()
    embeddings = undecayed(model, TrainingConfig(weight_decay=0.1, no_decay=["embeddings."]))
    assert embeddings == {name for name, _ in model.named_parameters() if ".embeddings." in name}


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


def test_adamw_is_fused_on_the_cpu() -> None:
    optimizer = build_optimizer(tiny_bert(), TrainingConfig())
    assert type(optimizer) is torch.optim.AdamW and optimizer.defaults["fused"] is True
    assert optimizer.defaults["betas"] == (0.9, 0.999) and optimizer.defaults["eps"] == 1e-8


OPTIMIZERS = {
    "adamw": ({"betas": (0.8, 0.99), "eps": 1e-6}, torch.optim.AdamW, {"betas": (0.8, 0.99), "eps": 1e-6}),
    "adam": ({"betas": (0.8, 0.99), "eps": 1e-6}, torch.optim.Adam, {"betas": (0.8, 0.99), "eps": 1e-6}),
    "sgd": ({"momentum": 0.9, "nesterov": True}, torch.optim.SGD, {"momentum": 0.9, "nesterov": True}),
    "rmsprop": ({"momentum": 0.5, "eps": 1e-6}, torch.optim.RMSprop, {"momentum": 0.5, "eps": 1e-6}),
    "adafactor": ({}, torch.optim.Adafactor, {}),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_each_optimizer_is_torchs_class_with_the_options_and_steps_as_it_does(name: str) -> None:
    options, cls, expected = OPTIMIZERS[name]
    cfg = TrainingConfig(optimizer=name, learning_rate=1e-2, weight_decay=0.1, **options)
    torch.manual_seed(0)
    # In evaluation mode: no dropout, so that the two models see the same forward.
    model = tiny_bert().eval()
    reference_model = tiny_bert().eval()
    reference_model.load_state_dict(model.state_dict())
    optimizer = build_optimizer(model, cfg)
    assert type(optimizer) is cls
    assert {key: optimizer.defaults[key] for key in expected} == expected
    # The reference: torch's class built by hand over the same split (decay on matrices only).
    matrices = [p for p in reference_model.parameters() if p.ndim >= 2]
    vectors = [p for p in reference_model.parameters() if p.ndim < 2]
    reference = cls(
        [{"params": matrices, "weight_decay": 0.1}, {"params": vectors, "weight_decay": 0.0}], lr=1e-2, **expected
    )
    batch = {"input_ids": torch.randint(0, 50, (4, 6)), "labels": torch.tensor([0, 1, 0, 1])}
    for _ in range(3):
        for each, step in ((model, optimizer), (reference_model, reference)):
            each(**batch).loss.backward()
            step.step()
            step.zero_grad()
    for (name_, ours), theirs in zip(model.named_parameters(), reference_model.parameters(), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6, msg=name_)


def rates(scheduler, optimizer, steps: int) -> list[float]:
    """The rate each of `steps` optimizer steps uses."""
    found = []
    for _ in range(steps):
        found.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    return found


def reference(name: str, optimizer, warmup: int, total: int):
    return {
        "linear": lambda: get_linear_schedule_with_warmup(optimizer, warmup, total),
        "cosine": lambda: get_cosine_schedule_with_warmup(optimizer, warmup, total),
        "cosine_with_restarts": lambda: get_cosine_with_hard_restarts_schedule_with_warmup(
            optimizer, warmup, total, num_cycles=3
        ),
        "polynomial": lambda: get_polynomial_decay_schedule_with_warmup(
            optimizer, warmup, total, lr_end=0.1, power=2.0
        ),
        "constant": lambda: get_constant_schedule_with_warmup(optimizer, warmup),
    }[name]()


SCHEDULES = ["linear", "cosine", "cosine_with_restarts", "polynomial", "constant"]


@pytest.mark.parametrize("name", SCHEDULES)
@pytest.mark.parametrize(("warmup", "steps"), [({"warmup_steps": 4}, 4), ({"warmup_ratio": 0.25}, 10)])
def test_each_schedule_gives_transformers_rates_step_by_step(name: str, warmup: dict, steps: int) -> None:
    total = 40
    cfg = TrainingConfig(scheduler=name, learning_rate=1.0, cycles=3, power=2.0, end_learning_rate=0.1, **warmup)
    optimizer = build_optimizer(tiny_bert(), cfg)
    ours = rates(build_scheduler(optimizer, cfg, total), optimizer, total + 2)
    expected_optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    expected = rates(reference(name, expected_optimizer, steps, total), expected_optimizer, total + 2)
    assert ours == pytest.approx(expected, abs=1e-12)
    # The warm-up ends at `steps`, the peak.
    assert ours[steps // 2] == pytest.approx(0.5) and ours[steps] == pytest.approx(1.0)


def test_schedule_shapes_by_hand() -> None:
    def run(**settings) -> list[float]:
        cfg = TrainingConfig(learning_rate=1.0, warmup_steps=0, **settings)
        optimizer = build_optimizer(tiny_bert(), cfg)
        return rates(build_scheduler(optimizer, cfg, 100), optimizer, 101)

    cosine = run(scheduler="cosine")
    assert cosine[50] == pytest.approx(0.5) and cosine[25] == pytest.approx((1 + math.cos(math.pi / 4)) / 2)
    restarts = run(scheduler="cosine_with_restarts", cycles=2)
    assert restarts[25] == pytest.approx(0.5) and restarts[50] == pytest.approx(1.0) and restarts[75] == 0.5
    polynomial = run(scheduler="polynomial", power=2.0, end_learning_rate=0.2)
    assert polynomial[50] == pytest.approx(0.8 * 0.25 + 0.2) and polynomial[100] == pytest.approx(0.2)
    assert set(run(scheduler="constant")) == {1.0}


def old_linear_schedule(total: int, ratio: float, step: int) -> float:
    """The LinearSchedule this module had before the other schedules (the same numbers must come out)."""
    warmup = round(ratio * total)
    if step < warmup:
        return step / max(1, warmup)
    return max(0.0, (total - step) / max(1, total - warmup))


def test_the_default_schedule_gives_the_numbers_it_gave_before() -> None:
    cfg = TrainingConfig(learning_rate=1.0)
    assert (cfg.scheduler, cfg.warmup_ratio, cfg.warmup_steps) == ("linear", 0.1, None)
    optimizer = build_optimizer(tiny_bert(), cfg)
    ours = rates(build_scheduler(optimizer, cfg, 37), optimizer, 38)
    assert ours == [old_linear_schedule(37, 0.1, step) for step in range(38)]


@pytest.mark.parametrize("name", SCHEDULES)
def test_refitting_to_new_steps_keeps_the_step_and_follows_the_new_plan(name: str) -> None:
    cfg = TrainingConfig(scheduler=name, learning_rate=1.0, warmup_ratio=0.1, cycles=2, end_learning_rate=0.01)
    optimizer = build_optimizer(tiny_bert(), cfg)
    scheduler = build_scheduler(optimizer, cfg, 100)
    before = rates(scheduler, optimizer, 30)
    # Refitted to the steps it already had: nothing changes, the rates go on as if never refitted.
    same = refit_scheduler(scheduler, cfg, 100)
    assert same.last_epoch == 30 and rates(same, optimizer, 20) == pytest.approx(rates_of(name, cfg, 100)[30:50])
    assert before == pytest.approx(rates_of(name, cfg, 100)[:30])
    # Refitted to 80 at step 50: the rate from here on is the 80-step schedule's (its warm-up, 8 steps, is over).
    shorter = refit_scheduler(same, cfg, 80)
    assert shorter.last_epoch == 50
    assert rates(shorter, optimizer, 35) == pytest.approx(rates_of(name, cfg, 80)[50:85])


def rates_of(name: str, cfg: TrainingConfig, total: int) -> list[float]:
    optimizer = build_optimizer(tiny_bert(), cfg)
    return rates(build_scheduler(optimizer, cfg, total), optimizer, total + 10)


def saved(state: dict) -> dict:
    """Through a checkpoint file: what torch.load(weights_only=True) reads back."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def resumed(cfg: TrainingConfig, state: dict, planned: int, fitted: int | None) -> tuple:
    """What loop._restore does: a fresh optimizer and schedule for the planned steps, their states loaded,
    the schedule rebuilt at the saved step (for a time budget's fitted steps)."""
    optimizer = build_optimizer(tiny_bert(), cfg)
    scheduler = build_scheduler(optimizer, cfg, planned)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    return optimizer, refit_scheduler(scheduler, cfg, fitted or planned)


@pytest.mark.parametrize("name", SCHEDULES)
def test_a_resume_after_a_refit_goes_on_exactly(name: str) -> None:
    cfg = TrainingConfig(scheduler=name, learning_rate=1.0, warmup_ratio=0.1, end_learning_rate=0.01)
    optimizer = build_optimizer(tiny_bert(), cfg)
    scheduler = build_scheduler(optimizer, cfg, 200)
    rates(scheduler, optimizer, 20)
    scheduler = refit_scheduler(scheduler, cfg, 90)
    rates(scheduler, optimizer, 10)
    state = saved({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()})
    uninterrupted = rates(scheduler, optimizer, 40)
    optimizer, scheduler = resumed(cfg, state, planned=200, fitted=90)
    assert scheduler.last_epoch == 30 and rates(scheduler, optimizer, 40) == uninterrupted


def test_a_checkpoint_of_the_old_linear_schedule_resumes() -> None:
    # Checkpoints from before saved LinearSchedule's __dict__ as the schedule's lambda state.
    cfg = TrainingConfig(learning_rate=1.0)
    optimizer = build_optimizer(tiny_bert(), cfg)
    old = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: old_linear_schedule(60, 0.1, step))
    rates(old, optimizer, 25)
    state = old.state_dict()
    state["lr_lambdas"] = [{"warmup_ratio": 0.1, "total_steps": 60, "warmup_steps": 6}]
    state = saved({"optimizer": optimizer.state_dict(), "scheduler": state})
    optimizer, scheduler = resumed(cfg, state, planned=100, fitted=60)
    assert rates(scheduler, optimizer, 36) == pytest.approx([old_linear_schedule(60, 0.1, s) for s in range(25, 61)])


def test_warmup_by_ratio_or_steps_not_both() -> None:
    assert TrainingConfig(warmup_steps=50).warmup_ratio is None
    assert TrainingConfig(warmup_ratio=0.2).warmup_steps is None
    with pytest.raises(ValidationError, match="warmup_ratio or warmup_steps, not both"):
        TrainingConfig(warmup_steps=50, warmup_ratio=0.2)
    # A saved config (defaults filled in) reads back as it was.
    for cfg in (TrainingConfig(warmup_steps=50), TrainingConfig()):
        assert TrainingConfig(**cfg.model_dump()) == cfg


def test_optimizer_and_schedule_options_are_checked() -> None:
    with pytest.raises(ValidationError, match="nesterov .* momentum above 0"):
        TrainingConfig(optimizer="sgd", nesterov=True)
    with pytest.raises(ValidationError, match="set optimizer: sgd"):
        TrainingConfig(optimizer="adamw", nesterov=True, momentum=0.9)
    with pytest.raises(ValidationError, match="end_learning_rate .* must be below learning_rate"):
        TrainingConfig(scheduler="polynomial", learning_rate=1e-5, end_learning_rate=1e-4)
    with pytest.raises(ValidationError, match="optimizer"):
        TrainingConfig(optimizer="lamb")


def test_a_config_file_with_both_warmups_is_refused_naming_them() -> None:
    with pytest.raises(UserError, match=r'c.yaml: "training": .*warmup_ratio or warmup_steps, not both'):
        validate_config({"data": {"train": "x.csv"}, "training": {"warmup_steps": 5, "warmup_ratio": 0.1}}, "c.yaml")


@pytest.mark.slow
def test_a_time_budget_runs_a_cosine_schedule_down_by_the_end(tiny_config: dict) -> None:
    import json

    import tunesmith

    tiny_config["training"].update(
        epochs=1000, max_time="3s", scheduler="cosine", warmup_ratio=0.1, logging_steps=2, eval_each_epoch=False
    )
    run = tunesmith.finetune(tiny_config)
    lines = [json.loads(line) for line in (run.path / "history.jsonl").read_text().splitlines()]
    steps = [line for line in lines if "split" not in line]
    assert run.metrics["training"]["steps"] == steps[-1]["step"] > 10
    peak = max(line["learning_rate"] for line in steps)
    # Refitted to the steps the budget held: near zero at the last step, and never above the peak rate.
    assert peak <= 2e-3 and steps[-1]["learning_rate"] <= 0.05 * peak
