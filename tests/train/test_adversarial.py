"""FGM, PGD and FreeLB against reference implementations written the usual way (perturbing the embedding weight,
or passing inputs_embeds), under full fine-tuning and LoRA, with accumulation, and with the CPU speedups."""

from __future__ import annotations

import copy
import math
import tempfile
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed

from tests.train.test_loop import prepared
from tunesmith.config import AdversarialOptions, RunConfig, TrainingConfig
from tunesmith.models.backbones import load_tokenizer
from tunesmith.strategies import Strategy, get_strategy
from tunesmith.tasks.classification import ClassificationTask
from tunesmith.train.adversarial import Passes, build_adversary, direction, project
from tunesmith.train.loop import fit

TEXTS = ["a great and lovely film", "awful", "the service felt dreadful and boring", "superb"]


def tiny_setup(tiny_model: str, strategy: str = "full") -> tuple:
    # No LoRA dropout: the reference's passes must see the same model as ours.
    lora = {"target_modules": ["query", "value"], "dropout": 0.0}
    cfg = RunConfig(data={"train": "unused.csv"}, strategy=strategy, lora=lora)
    task = ClassificationTask(cfg)
    task.names = ["neg", "pos"]
    set_seed(0)
    model = task.load_model(tiny_model)
    if strategy != "full":
        model = get_strategy(cfg, task).prepare(model, 10)
    tokenizer = load_tokenizer(tiny_model)
    batch = dict(tokenizer(TEXTS, padding=True, return_tensors="pt"))
    return task, model, batch, torch.tensor([1, 0, 0, 1])


def mean_loss(task, model, batch, labels, **inputs) -> torch.Tensor:
    sums, counts = task.loss(model(**batch, **inputs).logits, labels)
    return sums.sum() / counts.sum()


def ours(task, model, batch, labels, options: AdversarialOptions):
    """One step's gradients under the adversary, as the loop drives it (no accumulation)."""
    adversary = build_adversary(model, options)
    passes = Passes(
        lambda b, y: task.loss(model(**b).logits, y),
        lambda sums, counts: (sums.sum() / counts.sum()).backward(),
        torch.enable_grad,  # one process: nothing to keep from synchronising
    )
    with adversary.clean(batch, labels):
        mean_loss(task, model, batch, labels).backward()
    adversary.attack(passes)
    return adversary, gradients(model)


def gradients(model) -> dict[str, torch.Tensor]:
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def word_gradient(task, model, batch, labels, weight) -> torch.Tensor:
    """The loss gradient with respect to the word-embedding weight, frozen (LoRA) or not."""
    trains = weight.requires_grad
    weight.requires_grad_(True)
    (gradient,) = torch.autograd.grad(mean_loss(task, model, batch, labels), weight)
    weight.requires_grad_(trains)
    return gradient


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], tolerance: float = 1e-5) -> None:
    assert a.keys() == b.keys() and a
    for name in a:
        assert torch.allclose(a[name], b[name], atol=tolerance, rtol=1e-4), name


@pytest.mark.parametrize("strategy", ["full", "lora"])
def test_fgm_matches_perturbing_the_embedding_weight_by_epsilon_g_over_its_norm(tiny_model, strategy) -> None:
    task, model, batch, labels = tiny_setup(tiny_model, strategy)
    reference = copy.deepcopy(model)
    weight = model.get_input_embeddings().weight
    before = weight.detach().clone()
    options = AdversarialOptions(method="fgm", epsilon=0.5)
    adversary, got = ours(task, model, batch, labels, options)

    # The common recipe: clean backward; W += eps * g / ||g||; backward again; W restored.
    w = reference.get_input_embeddings().weight
    mean_loss(task, reference, batch, labels).backward()
    g = word_gradient(task, reference, batch, labels, w)
    r = 0.5 * g / g.norm()
    with torch.no_grad():
        w += r
    mean_loss(task, reference, batch, labels).backward()
    with torch.no_grad():
        w -= r
    assert_same(got, gradients(reference))
    assert torch.equal(weight, before), "the embedding weight must be left exactly as it was"
    assert not model.get_input_embeddings()._forward_hooks, "no hook may stay behind"
    assert adversary.last_norms == [pytest.approx(0.5)]
    # Under LoRA the frozen embedding weight is perturbed all the same, and still gets no gradient.
    assert (weight.grad is None) == (strategy == "lora")


def test_pgd_matches_the_common_recipe_and_stays_in_the_epsilon_ball(tiny_model) -> None:
    task, model, batch, labels = tiny_setup(tiny_model)
    reference = copy.deepcopy(model)
    # alpha close to epsilon: the projection binds from the second step on.
    options = AdversarialOptions(method="pgd", epsilon=0.3, alpha=0.25, steps=3)
    adversary, got = ours(task, model, batch, labels, options)

    w = reference.get_input_embeddings().weight
    mean_loss(task, reference, batch, labels).backward()
    clean = gradients(reference)
    g, r = word_gradient(task, reference, batch, labels, w), torch.zeros_like(w)
    for step in range(3):
        r = r + 0.25 * g / g.norm()
        r = r * 0.3 / max(float(r.norm()), 0.3)
        with torch.no_grad():
            w += r
        if step < 2:
            g = word_gradient(task, reference, batch, labels, w)
        else:
            reference.zero_grad()
            mean_loss(task, reference, batch, labels).backward()
        with torch.no_grad():
            w -= r
    expected = {name: clean[name] + p.grad for name, p in reference.named_parameters() if p.grad is not None}
    assert_same(got, expected)
    assert adversary.last_norms[0] == pytest.approx(0.25)
    assert adversary.last_norms[1:] == [pytest.approx(0.3), pytest.approx(0.3)]
    assert adversary.extra_forwards == 3 and adversary.extra_backwards == 3


def test_freelb_averages_the_gradients_of_its_steps_passes(tiny_model) -> None:
    task, model, batch, labels = tiny_setup(tiny_model)
    reference = copy.deepcopy(model)
    options = AdversarialOptions(method="freelb", epsilon=0.4, alpha=0.3, steps=3)
    adversary, got = ours(task, model, batch, labels, options)

    # As FreeLB's code: inputs_embeds = embedding(ids) + delta, loss / K backward each pass, delta ascends per
    # example on its (masked) gradient and is projected to the per-example epsilon ball.
    embedding = reference.get_input_embeddings()
    mask = batch["attention_mask"].unsqueeze(-1).float()
    delta = torch.zeros(*batch["input_ids"].shape, embedding.embedding_dim)
    inputs = {key: value for key, value in batch.items() if key != "input_ids"}
    norms = []
    for step in range(3):
        delta.requires_grad_()
        embeds = embedding(batch["input_ids"]) + delta
        (mean_loss(task, reference, inputs, labels, inputs_embeds=embeds) / 3).backward()
        if step < 2:
            g = delta.grad * mask
            delta = delta.detach() + 0.3 * g / g.flatten(1).norm(dim=1).view(-1, 1, 1)
            delta = delta * (0.4 / delta.flatten(1).norm(dim=1).clamp(min=0.4)).view(-1, 1, 1) * mask
            norms.append(float(delta.flatten(1).norm(dim=1).max()))
    assert_same(got, gradients(reference))
    assert adversary.last_norms == pytest.approx(norms) and max(norms) <= 0.4 + 1e-6
    assert adversary.extra_forwards == 2


def test_direction_and_projection_by_hand() -> None:
    g = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    assert torch.allclose(direction(g, "l2"), torch.tensor([[0.6, 0.8], [0.0, 0.0]]))
    assert torch.equal(direction(g, "linf"), torch.tensor([[1.0, 1.0], [0.0, 0.0]]))
    # Per row: the zero row stays zero instead of dividing by zero.
    assert torch.allclose(direction(g, "l2", (1,)), torch.tensor([[0.6, 0.8], [0.0, 0.0]]))
    assert torch.allclose(project(g, 1.0, "l2"), torch.tensor([[0.6, 0.8], [0.0, 0.0]]))
    assert torch.equal(project(g, 10.0, "l2"), g)
    assert torch.equal(project(g, 2.0, "linf"), torch.tensor([[2.0, 2.0], [0.0, 0.0]]))


def first_step_gradient(tiny_model, sentiment_csv, batch_size, accumulation, method="fgm", speedups=True):
    training = TrainingConfig(
        batch_size=batch_size, gradient_accumulation_steps=accumulation, max_steps=1, max_length=32,
        group_by_length=False, max_grad_norm=None, eval_each_epoch=False, cpu_speedups=speedups,
    )  # fmt: skip
    tokenizer, task, encoded = prepared(tiny_model, sentiment_csv, training)
    set_seed(0)
    model = task.load_model(tiny_model)
    seen: dict[str, torch.Tensor] = {}

    def keep(model, step) -> None:
        seen.update({name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None})

    strategy = Strategy("full", lambda model, steps: model, after_step=keep)
    _, summary = fit(
        model, encoded["train"], None, tokenizer, task, training, Accelerator(gradient_accumulation_steps=accumulation),
        lambda record: None, Path(tempfile.mkdtemp()), strategy=strategy,
        adversarial=AdversarialOptions(method=method, epsilon=0.5, alpha=0.3, steps=2),
    )  # fmt: skip
    return seen, summary


@pytest.mark.parametrize("method", ["fgm", "freelb"])
def test_four_micro_batches_of_8_train_as_one_batch_of_32(tiny_model, sentiment_csv, method) -> None:
    whole, summary = first_step_gradient(tiny_model, sentiment_csv, 32, 1, method)
    accumulated, _ = first_step_gradient(tiny_model, sentiment_csv, 8, 4, method)
    numerator = sum(float((accumulated[name] - whole[name]).pow(2).sum()) for name in whole)
    assert (numerator / sum(float(g.pow(2).sum()) for g in whole.values())) ** 0.5 <= 1e-5
    report = summary.extra["adversarial"]
    assert report["method"] == method and report["forward_passes_relative"] == 2.0
    assert report["extra_backward_passes"] == 1 and report["extra_time_s"] > 0


def test_the_kept_sparse_embedding_gradient_gives_the_dense_paths_gradient(tiny_model, sentiment_csv) -> None:
    kept, _ = first_step_gradient(tiny_model, sentiment_csv, 8, 2, "fgm", speedups=True)
    dense, _ = first_step_gradient(tiny_model, sentiment_csv, 8, 2, "fgm", speedups=False)
    assert_same(kept, dense, tolerance=1e-6)


def test_a_run_under_lora_with_fgm_and_rdrop_reports_the_extra_compute(tiny_config) -> None:
    import tunesmith

    config = {
        **tiny_config, "strategy": "lora", "training": {**tiny_config["training"], "epochs": 1},
        "adversarial": {"method": "fgm", "epsilon": 0.5}, "rdrop": {"alpha": 1.0},
    }  # fmt: skip
    training = tunesmith.finetune(config).metrics["training"]
    assert training["adversarial"]["method"] == "fgm"
    assert training["adversarial"]["extra_forward_passes"] == training["steps"]
    assert training["adversarial"]["forward_passes_relative"] == 2.0
    assert 0 < training["adversarial"]["extra_time_share"] < 1
    assert training["rdrop"] == {"alpha": 1.0, "forward_rows_relative": 2.0}


def test_a_bad_method_is_refused_naming_the_field(tiny_config) -> None:
    from tunesmith.config import validate_config
    from tunesmith.errors import UserError

    with pytest.raises(UserError, match="adversarial.method"):
        validate_config({**tiny_config, "adversarial": {"method": "fgsm"}}, "test")
    with pytest.raises(UserError, match="adversarial.epsilon"):
        validate_config({**tiny_config, "adversarial": {"epsilon": 0}}, "test")


def test_deepspeed_is_refused_and_none_builds_nothing(tiny_model) -> None:
    from tunesmith.errors import UserError

    _, model, _, _ = tiny_setup(tiny_model)
    assert build_adversary(model, AdversarialOptions()) is None
    with pytest.raises(UserError, match="DeepSpeed"):
        build_adversary(model, AdversarialOptions(method="fgm"), deepspeed=True)


def test_pgd_under_linf_stays_in_the_epsilon_box(tiny_model) -> None:
    task, model, batch, labels = tiny_setup(tiny_model)
    options = AdversarialOptions(method="pgd", epsilon=0.01, alpha=0.008, steps=3, norm="linf")
    adversary, _ = ours(task, model, batch, labels, options)
    # Steps of 0.008 · sign(g): the first stays inside, the next two reach the box's wall.
    assert adversary.last_norms == [pytest.approx(0.008), pytest.approx(0.01), pytest.approx(0.01)]


def test_adversarial_training_and_rdrop_are_refused_where_the_method_trains_no_task_model() -> None:
    from pydantic import ValidationError

    from tunesmith.config import RunConfig

    with pytest.raises(ValidationError, match="adversarial.method, rdrop.alpha apply to method finetune"):
        RunConfig(data={"train": "x.csv"}, method="zero_shot", adversarial={"method": "fgm"}, rdrop={"alpha": 1.0})


def test_fgm_with_focal_loss_and_class_weights_trains_under_lora_and_reloads(tiny_config) -> None:
    """The issue's composition: adversarial training on a focal loss, under LoRA, saved and reloaded."""
    import tunesmith

    config = {
        **tiny_config, "strategy": "lora", "training": {**tiny_config["training"], "epochs": 1},
        "loss": {"name": "focal", "gamma": 2.0, "class_weights": "inverse"},
        "adversarial": {"method": "fgm", "epsilon": 0.5},
    }  # fmt: skip
    run = tunesmith.finetune(config)
    training = run.metrics["training"]
    assert training["adversarial"]["forward_passes_relative"] == 2.0
    assert math.isfinite(run.metrics["validation"]["loss"])
    predicted = tunesmith.load(run.path).predict(["a fine film"])[0]
    assert predicted["label"] in predicted["probabilities"]
