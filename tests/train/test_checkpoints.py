import errno
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType
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


def test_a_checkpoint_written_under_fsdp_is_refused_without_it(tmp_path: Path) -> None:
    saved = save_at(tmp_path, 1, training_objects(), Accelerator())
    manifest = json.loads((saved.path / "checkpoint.json").read_text())
    assert manifest["sharded"] is False
    (saved.path / "checkpoint.json").write_text(json.dumps({**manifest, "sharded": True}))
    with pytest.raises(UserError, match="written under FSDP, and this run is not"):
        checkpoints.restore(saved, *training_objects(), Accelerator())


def test_resuming_under_deepspeed_is_refused_before_anything_loads(tmp_path: Path) -> None:
    saved = save_at(tmp_path, 1, training_objects(), Accelerator())
    model, optimizer, scheduler = training_objects(seed=1)
    before = [parameter.clone() for parameter in model.parameters()]
    deepspeed = SimpleNamespace(num_processes=1, distributed_type=DistributedType.DEEPSPEED)
    with pytest.raises(UserError, match="Cannot resume .* under DeepSpeed"):
        checkpoints.restore(saved, model, optimizer, scheduler, deepspeed)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


@pytest.mark.slow  # launches two processes
def test_two_fsdp_processes_resume_exactly_from_their_gathered_optimizer_state(tmp_path: Path) -> None:
    # Two CPU processes shard a small model with FSDP2 (tests/train/fsdp_checkpoint_worker.py).
    result = tmp_path / "result.json"
    worker = Path(__file__).with_name("fsdp_checkpoint_worker.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    launched = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", str(worker), str(result)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert launched.returncode == 0, launched.stderr[-3000:]
    outcome = json.loads(result.read_text())
    assert outcome["progress"] == {"step": 3}
    # The checkpoint holds every shard's moments, whole and keyed by parameter name.
    assert outcome["moments"] == {"0.weight": [7, 5], "0.bias": [7], "2.weight": [3, 7], "2.bias": [3]}
    for name, expected in outcome["expected"].items():
        assert torch.equal(torch.tensor(outcome["got"][name]), torch.tensor(expected)), name
