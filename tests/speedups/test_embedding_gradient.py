import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForSequenceClassification, GPT2Config, GPT2LMHeadModel

from tunesmith.config import TrainingConfig
from tunesmith.speedups import training_speedups
from tunesmith.speedups.embedding_gradient import keep_embedding_gradient


def two_copies(tiny_model: str) -> tuple:
    torch.manual_seed(0)
    dense = AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=2)
    kept = AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=2)
    kept.load_state_dict(dense.state_dict())
    return dense, kept


def batches(count: int) -> list[dict]:
    generator = torch.Generator().manual_seed(1)
    out = []
    for _ in range(count):
        # A small id range repeats tokens within a batch; the last two positions are padding.
        ids = torch.randint(1000, 1040, (4, 9), generator=generator)
        mask = torch.ones_like(ids)
        ids[:, -2:], mask[:, -2:] = 0, 0
        out.append({"input_ids": ids, "attention_mask": mask, "labels": torch.randint(0, 2, (4,), generator=generator)})
    return out


@pytest.mark.parametrize("micro_batches", [1, 2])
def test_the_kept_gradient_trains_as_the_dense_one(tiny_model: str, micro_batches: int) -> None:
    dense, kept = two_copies(tiny_model)
    gradient = keep_embedding_gradient(kept)
    assert gradient is not None and kept.get_input_embeddings().sparse
    optimizers = [torch.optim.AdamW(m.parameters(), lr=1e-2, weight_decay=0.01, fused=True) for m in (dense, kept)]
    data = batches(3 * micro_batches)
    for step in range(3):
        for model in (dense, kept):
            for batch in data[micro_batches * step : micro_batches * (step + 1)]:
                if model is kept:
                    gradient.attach(batch["input_ids"])
                model(**batch).loss.backward()
        ours, theirs = (m.get_input_embeddings().weight.grad for m in (kept, dense))
        assert ours is gradient.buffer and not ours.is_sparse
        if micro_batches == 1:
            assert torch.equal(ours, theirs)
        else:
            # Each micro-batch's rows add into the running sum, where the dense path adds the two
            # micro-batches' sums: the same numbers, rounded in another order. The rounding then
            # moves the weights apart (Adam scales even the key biases' rounding noise to whole
            # steps), so only the first step's gradients are compared.
            torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-9)
            assert theirs.count_nonzero() > 0
            break
        for model, optimizer in zip((dense, kept), optimizers, strict=True):
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        for (name, ours), theirs in zip(kept.named_parameters(), dense.parameters(), strict=True):
            assert torch.equal(ours, theirs), (step, name)
    gradient.release()
    assert not kept.get_input_embeddings().sparse


def test_a_frozen_embedding_gets_no_gradient_and_is_not_decayed(tiny_model: str) -> None:
    _, model = two_copies(tiny_model)
    gradient = keep_embedding_gradient(model)
    weight = model.get_input_embeddings().weight
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.5)
    before = weight.detach().clone()
    batch = batches(1)[0]
    # What gradual unfreezing's before_step does: freeze it after the gradient was set up.
    weight.requires_grad_(False)
    gradient.attach(batch["input_ids"])
    assert weight.grad is None
    model(**batch).loss.backward()
    optimizer.step()
    assert torch.equal(weight, before)
    weight.requires_grad_(True)
    gradient.attach(batch["input_ids"])
    assert weight.grad is gradient.buffer and not weight.grad.any()


def test_the_buffer_is_freed_between_steps_and_kept_within_one(tiny_model: str) -> None:
    _, model = two_copies(tiny_model)
    gradient = keep_embedding_gradient(model)
    weight = model.get_input_embeddings().weight
    first, second = batches(2)
    gradient.attach(first["input_ids"])
    model(**first).loss.backward()
    gradient.free()  # mid-step (accumulating): the summed gradient stays
    assert weight.grad is gradient.buffer and weight.grad.any()
    weight.grad = None  # what the optimizer's zero_grad does
    gradient.free()  # between steps, as before an evaluation
    assert gradient.buffer is None and not gradient.touched
    gradient.attach(second["input_ids"])
    assert weight.grad is gradient.buffer and not weight.grad.any()


def test_tied_frozen_and_wrapped_embeddings_are_left_alone(tiny_model: str) -> None:
    tied = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=64, n_positions=16))
    assert tied.get_output_embeddings().weight is tied.get_input_embeddings().weight
    assert keep_embedding_gradient(tied) is None
    _, frozen = two_copies(tiny_model)
    frozen.get_input_embeddings().weight.requires_grad_(False)
    assert keep_embedding_gradient(frozen) is None
    _, plain = two_copies(tiny_model)
    wrapped = get_peft_model(plain, LoraConfig(target_modules=["word_embeddings"], r=2))
    assert keep_embedding_gradient(wrapped) is None
    for model in (tied, frozen, wrapped):
        assert not getattr(model.get_input_embeddings(), "sparse", False)


@pytest.mark.parametrize("accumulation", [1, 2])
def test_a_run_with_the_kept_gradient_logs_the_dense_runs_losses(
    tiny_model: str, sentiment_csv, monkeypatch: pytest.MonkeyPatch, accumulation: int
) -> None:
    from tests.train.test_loop import train
    from tunesmith.speedups import embedding_gradient

    used = []

    def spy(model):
        used.append(keep_embedding_gradient(model))
        return used[-1]

    monkeypatch.setattr(embedding_gradient, "keep_embedding_gradient", spy)
    _, _, kept_log = train(tiny_model, sentiment_csv, epochs=2, gradient_accumulation_steps=accumulation)
    assert used and used[0] is not None and not used[0].embedding.sparse  # released at the end
    _, _, dense_log = train(
        tiny_model, sentiment_csv, epochs=2, gradient_accumulation_steps=accumulation, cpu_speedups=False
    )
    assert len(used) == 1  # the switch turned it off
    losses = [[entry["loss"] for entry in log if "loss" in entry] for log in (kept_log, dense_log)]
    assert len(losses[0]) >= 3
    assert losses[0] == (losses[1] if accumulation == 1 else pytest.approx(losses[1], rel=1e-6))


def test_the_loops_hooks_keep_the_gradients_invariant(tiny_model: str) -> None:
    from accelerate import Accelerator

    _, model = two_copies(tiny_model)
    speedups = training_speedups(model, TrainingConfig(), Accelerator(cpu=True))
    assert speedups.applied == ["embedding_gradient"]
    weight = model.get_input_embeddings().weight
    first, second = batches(2)
    speedups.before_micro_batch(first)
    assert weight.grad is speedups.embedding_gradient.buffer
    model(**first).loss.backward()
    weight.grad = None  # the optimizer's zero_grad
    speedups.before_evaluation()
    assert speedups.embedding_gradient.buffer is None
    speedups.before_micro_batch(second)
    model(**second).loss.backward()
    weight.grad = None
    speedups.before_checkpoint()
    assert speedups.embedding_gradient.buffer is None
    speedups.before_micro_batch(first)
    speedups.finished()
    assert weight.grad is None and not model.get_input_embeddings().sparse


@pytest.mark.parametrize("setting", ["switch off", "compile", "gpu"])
def test_the_loops_hooks_do_nothing_where_the_kept_gradient_does_not_apply(tiny_model: str, setting: str) -> None:
    from types import SimpleNamespace

    _, model = two_copies(tiny_model)
    cfg = TrainingConfig(cpu_speedups=setting != "switch off", compile=setting == "compile")
    device = torch.device("cuda" if setting == "gpu" else "cpu")
    accelerator = SimpleNamespace(device=device, num_processes=1, unwrap_model=lambda model: model)
    speedups = training_speedups(model, cfg, accelerator)
    assert speedups.embedding_gradient is None and speedups.applied == []
    speedups.before_micro_batch(batches(1)[0])
    speedups.before_evaluation()
    speedups.finished()
    assert model.get_input_embeddings().weight.grad is None and not model.get_input_embeddings().sparse
