import errno
import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from accelerate import Accelerator
from torch import nn

from tunesmith.errors import UserError
from tunesmith.train import checkpoints


def training_objects(seed: int = 0) -> tuple[nn.Module, torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (1 + step))
    return model, optimizer, scheduler


def take_steps(model: nn.Module, optimizer: torch.optim.Optimizer, scheduler, steps: int) -> None:
    for _ in range(steps):
        loss = model(torch.randn(3, 4)).pow(2).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        scheduler.step()


def save_at(root: Path, step: int, objects: tuple, accelerator: Accelerator) -> checkpoints.Checkpoint:
    model, optimizer, scheduler = objects
    return checkpoints.save(root, {"step": step, "epoch": 0}, model, optimizer, scheduler, accelerator)


def test_restore_continues_exactly_where_the_checkpoint_was_written(tmp_path: Path) -> None:
    accelerator = Accelerator()
    original = training_objects()
    take_steps(*original, steps=3)
    saved = save_at(tmp_path, 3, original, accelerator)
    take_steps(*original, steps=2)
    python_draw, numpy_draw = random.random(), np.random.rand()

    resumed = training_objects(seed=1)  # different weights: all must come from the checkpoint
    random.seed(7), np.random.seed(7), torch.manual_seed(7)
    progress, rng = checkpoints.restore(saved, *resumed, accelerator)
    checkpoints.set_rng_state(rng)
    take_steps(*resumed, steps=2)

    assert progress == {"step": 3, "epoch": 0}
    for (name, a), (_, b) in zip(original[0].state_dict().items(), resumed[0].state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    assert resumed[2].get_last_lr() == original[2].get_last_lr()
    assert (random.random(), np.random.rand()) == (python_draw, numpy_draw)


def test_checkpoint_files_and_rotation_keep_the_last_and_the_best(tmp_path: Path) -> None:
    accelerator = Accelerator()
    objects = training_objects()
    for step in (2, 4, 6, 8):
        save_at(tmp_path, step, objects, accelerator)
        checkpoints.prune(tmp_path, keep_last=2, keep_step=2)
    assert [c.step for c in checkpoints.listed(tmp_path)] == [8, 6, 2]
    newest = checkpoints.listed(tmp_path)[0].path
    files = ["checkpoint.json", "model.safetensors", "optimizer.pt", "rng-0.pt"]
    assert sorted(p.name for p in newest.iterdir()) == files
    assert not list(tmp_path.glob(".*"))  # no temporary folder left behind


def test_a_corrupted_latest_checkpoint_falls_back_to_the_one_before(tmp_path: Path) -> None:
    accelerator = Accelerator()
    objects = training_objects()
    save_at(tmp_path, 5, objects, accelerator)
    latest = save_at(tmp_path, 10, objects, accelerator)
    weights = latest.path / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # one flipped bit in the last weight: same size, different content
    weights.write_bytes(bytes(data))

    usable, skipped = checkpoints.latest_usable(tmp_path)
    assert usable is not None and usable.step == 5
    assert skipped == ["step-10: model.safetensors does not match its SHA-256 (corrupted)"]

    (usable.path / "optimizer.pt").write_bytes(b"truncated")
    assert checkpoints.latest_usable(tmp_path)[0] is None
    assert "optimizer.pt has 9 bytes" in checkpoints.latest_usable(tmp_path)[1][1]


def test_a_checkpoint_interrupted_while_written_is_never_used(tmp_path: Path) -> None:
    accelerator = Accelerator()
    complete = save_at(tmp_path, 4, training_objects(), accelerator)
    # What a kill -9 during writing leaves: a temporary folder, or (copied by hand) no manifest.
    (tmp_path / ".step-6.tmp").mkdir()
    (tmp_path / ".step-6.tmp" / "rng-0.pt").write_bytes(b"x")
    half = tmp_path / "step-8"
    half.mkdir()
    (half / "model.safetensors").write_bytes(b"x")
    usable, skipped = checkpoints.latest_usable(tmp_path)
    assert usable == complete
    assert skipped == ["step-8: checkpoint.json is missing (the checkpoint was never completed)"]
    checkpoints.remove_unfinished(tmp_path)
    assert not (tmp_path / ".step-6.tmp").exists()


def test_disk_full_while_saving_is_a_clear_error_and_keeps_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    accelerator = Accelerator()
    objects = training_objects()
    previous = save_at(tmp_path, 3, objects, accelerator)

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoints, "save_model", full_disk)
    message = r"step-6 \(No space left on device\)\. The previous checkpoint, .*step-3, is intact"
    with pytest.raises(UserError, match=message):
        save_at(tmp_path, 6, objects, accelerator)
    assert checkpoints.latest_usable(tmp_path) == (previous, [])
    assert [p.name for p in tmp_path.iterdir()] == ["step-3"]


def test_state_files_load_without_pickle(tmp_path: Path) -> None:
    saved = save_at(tmp_path, 1, training_objects(), Accelerator())
    # weights_only=True refuses anything but tensors and plain containers: no code can run on load.
    for name in ("optimizer.pt", "rng-0.pt"):
        torch.load(saved.path / name, weights_only=True)
    manifest = json.loads((saved.path / "checkpoint.json").read_text())
    assert manifest["processes"] == 1 and set(manifest["files"]) == {"model.safetensors", "optimizer.pt", "rng-0.pt"}


def test_a_checkpoint_from_another_process_count_is_refused(tmp_path: Path) -> None:
    saved = save_at(tmp_path, 1, training_objects(), Accelerator())
    manifest = json.loads((saved.path / "checkpoint.json").read_text())
    (saved.path / "checkpoint.json").write_text(json.dumps({**manifest, "processes": 2}))
    with pytest.raises(UserError, match="written by 2 processes, and this run has 1"):
        checkpoints.restore(saved, *training_objects(), Accelerator())
