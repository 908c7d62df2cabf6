import pytest
import torch

from tests.speedups.test_embedding_gradient import two_copies
from tunesmith.speedups.embedding_gradient import keep_embedding_gradient
from tunesmith.train.clipping import clip_gradients


def batch(seed: int = 1) -> dict:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, 1040, (4, 9), generator=generator)
    return {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "labels": torch.randint(0, 2, (4,), generator=generator),
    }


def gradients(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.grad.clone() for p in model.parameters()]


# The norm of these gradients is about 4: 0.05 clips them, 100 does not.
@pytest.mark.parametrize("max_norm", [0.05, 100.0])
@pytest.mark.parametrize("kind", ["adamw-fused", "adamw-foreach", "sgd-fused", "sgd"])
def test_the_step_sees_torchs_clipped_gradients(tiny_model: str, max_norm: float, kind: str) -> None:
    theirs, ours = two_copies(tiny_model)
    name, _, variant = kind.partition("-")
    make = {"adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}[name]
    options = {"fused": variant == "fused", "foreach": variant == "foreach"}
    optimizers = [make(m.parameters(), lr=1e-2, **options) for m in (theirs, ours)]
    for model in (theirs, ours):
        model(**batch()).loss.backward()
    their_norm = torch.nn.utils.clip_grad_norm_(theirs.parameters(), max_norm)
    our_norm = clip_gradients(ours.parameters(), max_norm, optimizers[1])
    torch.testing.assert_close(our_norm, their_norm)
    assert (their_norm > max_norm) == (max_norm < 1)
    for optimizer in optimizers:
        optimizer.step()
    # A fused step stores each gradient back divided by its scale: what it stepped with.
    for ours_grad, theirs_grad in zip(gradients(ours), gradients(theirs), strict=True):
        torch.testing.assert_close(ours_grad, theirs_grad, rtol=1e-6, atol=1e-9)
    if name == "sgd":  # Adam turns rounding differences in near-zero gradients into whole steps
        for our_weight, their_weight in zip(ours.parameters(), theirs.parameters(), strict=True):
            torch.testing.assert_close(our_weight, their_weight, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("micro_batches", [1, 2])
def test_the_kept_embedding_gradients_norm_is_its_touched_rows(tiny_model: str, micro_batches: int) -> None:
    theirs, ours = two_copies(tiny_model)
    kept = keep_embedding_gradient(ours)
    optimizers = [torch.optim.AdamW(m.parameters(), lr=1e-2, fused=True) for m in (theirs, ours)]
    for step in range(2):
        for seed in range(micro_batches):
            data = batch(10 * step + seed)
            kept.attach(data["input_ids"])
            ours(**data).loss.backward()
            theirs(**data).loss.backward()
        rows = kept.touched_gradient_rows()
        assert rows is not None and len(rows) == torch.cat(kept.touched).unique().numel() < 40
        their_norm = torch.nn.utils.clip_grad_norm_(theirs.parameters(), 0.05)
        our_norm = clip_gradients(ours.parameters(), 0.05, optimizers[1], kept)
        torch.testing.assert_close(our_norm, their_norm, rtol=1e-6, atol=0)
        for optimizer in optimizers:
            optimizer.step()
        embedding_gradients = [m.get_input_embeddings().weight.grad for m in (ours, theirs)]
        torch.testing.assert_close(*embedding_gradients, rtol=1e-6, atol=1e-9)
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
    assert kept.touched_gradient_rows() is None  # between steps: no gradient to measure
    kept.release()


def test_a_training_run_clips_as_torch_does(tiny_model: str, sentiment_csv, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.train.test_loop import train
    from tunesmith.train import loop

    norms = []

    def spy(*args, **kwargs):
        norms.append(clip_gradients(*args, **kwargs))
        return norms[-1]

    monkeypatch.setattr(loop, "clip_gradients", spy)
    _, _, our_log = train(tiny_model, sentiment_csv, epochs=3, max_grad_norm=0.1)
    assert max(norms) > 0.1  # it did clip

    def torch_clip(parameters, max_norm, optimizer, kept=None):
        return torch.nn.utils.clip_grad_norm_(parameters, max_norm)

    monkeypatch.setattr(loop, "clip_gradients", torch_clip)
    _, _, their_log = train(tiny_model, sentiment_csv, epochs=3, max_grad_norm=0.1)
    losses = [[entry["loss"] for entry in log if "loss" in entry] for log in (our_log, their_log)]
    assert len(losses[0]) >= 3
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
