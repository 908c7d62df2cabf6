"""Resumable checkpoints: written atomically, verified before use, rotated.

A checkpoint is one folder, `checkpoints/step-N/`:

    model.safetensors   the weights (safetensors: loading them runs no code)
    optimizer.pt        optimizer and scheduler state, read back with weights_only=True;
                        under FSDP the state of every shard, gathered and keyed by parameter name
    rng-<rank>.pt       each process's random number generators
    checkpoint.json     the loop's progress and a SHA-256 of every file; written last

It is written into a hidden temporary folder that is renamed into place only when
complete, so a crash while writing leaves nothing that passes for a checkpoint. A
checkpoint whose files no longer match their digests (a bad disk, a truncated copy) is
skipped on resume in favour of the one before it.

Accelerate's `save_state` would do most of this, but it reads registered objects with
`weights_only=False` (pickle can run code) and has no notion of "the best checkpoint".
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType
from safetensors.torch import load_file, load_model, save_file, save_model
from torch import nn

from tunesmith.errors import UserError

PREFIX = "step-"
MANIFEST = "checkpoint.json"
WEIGHTS = "model.safetensors"
OPTIMIZER = "optimizer.pt"


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    step: int

    def manifest(self) -> dict[str, Any]:
        return json.loads((self.path / MANIFEST).read_text(encoding="utf-8"))


def at(root: Path, step: int) -> Checkpoint:
    return Checkpoint(root / f"{PREFIX}{step}", step)


def listed(root: Path) -> list[Checkpoint]:
    """The checkpoint folders under `root`, newest first (unverified)."""
    found = []
    if root.is_dir():
        for child in root.iterdir():
            number = child.name.removeprefix(PREFIX)
            if child.is_dir() and child.name.startswith(PREFIX) and number.isdigit():
                found.append(Checkpoint(child, int(number)))
    return sorted(found, key=lambda checkpoint: -checkpoint.step)


def problem(checkpoint: Checkpoint) -> str | None:
    """Why `checkpoint` cannot be used, or None when every file matches its digest."""
    try:
        manifest = checkpoint.manifest()
        files = manifest["files"]
        manifest["progress"]["step"]
    except FileNotFoundError:
        return f"{MANIFEST} is missing (the checkpoint was never completed)"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"{MANIFEST} is unreadable ({exc})"
    for name, expected in files.items():
        path = checkpoint.path / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != expected["bytes"]:
            return f"{name} has {path.stat().st_size} bytes, not {expected['bytes']}"
        if _sha256(path) != expected["sha256"]:
            return f"{name} does not match its SHA-256 (corrupted)"
    return None


def latest_usable(root: Path) -> tuple[Checkpoint | None, list[str]]:
    """The newest checkpoint that verifies, and what was wrong with any newer ones."""
    skipped = []
    for checkpoint in listed(root):
        reason = problem(checkpoint)
        if reason is None:
            return checkpoint, skipped
        skipped.append(f"{checkpoint.path.name}: {reason}")
    return None, skipped


def save(
    root: Path,
    progress: dict[str, Any],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    accelerator: Accelerator,
) -> Checkpoint:
    """Write the training state at `progress["step"]` as one complete checkpoint folder."""
    step = progress["step"]
    final = at(root, step).path
    temporary = root / f".{PREFIX}{step}.tmp"
    main = accelerator.is_main_process
    try:
        if main:
            shutil.rmtree(temporary, ignore_errors=True)
            temporary.mkdir(parents=True)
        accelerator.wait_for_everyone()
        torch.save(rng_state(), temporary / f"rng-{accelerator.process_index}.pt")
        save_weights(model, accelerator, temporary / WEIGHTS)
        optimizer_state = whole_optimizer_state(model, optimizer, accelerator)
        if main:
            torch.save({"optimizer": optimizer_state, "scheduler": scheduler.state_dict()}, temporary / OPTIMIZER)
        accelerator.wait_for_everyone()
        if main:
            files = {path.name: _describe(path) for path in sorted(temporary.iterdir())}
            manifest = {
                "progress": progress,
                "processes": accelerator.num_processes,
                "sharded": sharded(accelerator),
                "files": files,
            }
            (temporary / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
            _sync_folder(temporary)
            # Only a checkpoint that failed verification can already sit here (resume skipped it).
            shutil.rmtree(final, ignore_errors=True)
            os.replace(temporary, final)
    except OSError as exc:
        if main:
            shutil.rmtree(temporary, ignore_errors=True)
        previous = listed(root)
        kept = f"The previous checkpoint, {previous[0].path}, is intact. " if previous else ""
        raise UserError(
            f"Could not write checkpoint {final} ({exc.strerror or exc}). {kept}Free some disk space "
            "(or lower training.save_total_limit), then run the same command again to resume."
        ) from None
    accelerator.wait_for_everyone()
    return Checkpoint(final, step)


def restore(
    checkpoint: Checkpoint,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    accelerator: Accelerator,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Load weights, optimizer and scheduler; returns the saved progress and this process's RNG state.

    The caller sets the RNG state (`set_rng_state`) at the right moment: creating a data
    loader iterator draws from the global generator, so mid-epoch it must come after that.
    """
    manifest = checkpoint.manifest()
    if manifest["processes"] != accelerator.num_processes:
        raise UserError(
            f"Checkpoint {checkpoint.path} was written by {manifest['processes']} processes, and this run has "
            f"{accelerator.num_processes}. Resume with the same number of processes (the data order depends on it)."
        )
    if manifest.get("sharded", False) != sharded(accelerator):
        written, now = ("under FSDP", "is not") if manifest.get("sharded") else ("without FSDP", "is")
        raise UserError(
            f"Checkpoint {checkpoint.path} was written {written}, and this run {now}: their optimizer states "
            "are stored differently. Resume with the launch config the run started with."
        )
    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        raise UserError(
            f"Cannot resume from {checkpoint.path} under DeepSpeed: each process holds its own part of the "
            "optimizer state, and checkpoints keep the main process's only. Start the run afresh (--overwrite), "
            "or train it under FSDP or plain data parallelism, which resume."
        )
    load_weights(checkpoint, accelerator.unwrap_model(model), accelerator)
    state = torch.load(checkpoint.path / OPTIMIZER, map_location="cpu", weights_only=True)
    if sharded(accelerator):
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

        # Every process reads the whole state and keeps its own shard of it, as with the weights.
        options = StateDictOptions(full_state_dict=True)
        set_optimizer_state_dict(model, _torch_optimizer(optimizer), state["optimizer"], options=options)
    else:
        optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    rng = torch.load(checkpoint.path / f"rng-{accelerator.process_index}.pt", weights_only=True)
    return manifest["progress"], rng


def sharded(accelerator: Accelerator) -> bool:
    """Whether each process holds only a shard of the weights (FSDP)."""
    return accelerator.distributed_type == DistributedType.FSDP


def save_weights(model: nn.Module, accelerator: Accelerator, path: Path) -> None:
    """The whole weights to `path`, written by the main process; every process must call this."""
    if sharded(accelerator):
        # Gathering the shards is a collective, so every process takes part.
        weights = accelerator.get_state_dict(model)
        if accelerator.is_main_process:
            save_file({name: tensor.contiguous() for name, tensor in weights.items()}, str(path))
    elif accelerator.is_main_process:
        save_model(accelerator.unwrap_model(model), str(path))


def whole_optimizer_state(
    model: nn.Module, optimizer: torch.optim.Optimizer, accelerator: Accelerator
) -> dict[str, Any]:
    """The optimizer's state for the main process to save; every process must call this.

    Under FSDP each process holds the state of its own shard, so the shards are gathered (a
    collective) onto the main process; the other processes get an empty dict.
    """
    if not sharded(accelerator):
        return optimizer.state_dict()
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_optimizer_state_dict(model, _torch_optimizer(optimizer), options=options)


def _torch_optimizer(optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
    # torch's state-dict functions step and index the optimizer itself, not Accelerate's wrapper.
    return getattr(optimizer, "optimizer", optimizer)


def load_weights(checkpoint: Checkpoint, model: nn.Module, accelerator: Accelerator) -> None:
    path = str(checkpoint.path / WEIGHTS)
    if sharded(accelerator):
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

        # Every process reads the whole file and keeps its own shard of it.
        set_model_state_dict(model, load_file(path), options=StateDictOptions(full_state_dict=True))
    else:
        load_model(model, path)


def prune(root: Path, keep_last: int, keep_step: int | None) -> None:
    """Delete all but the newest `keep_last` checkpoints and the one at `keep_step` (the best)."""
    for checkpoint in listed(root)[keep_last:]:
        if checkpoint.step != keep_step:
            shutil.rmtree(checkpoint.path, ignore_errors=True)


def remove_unfinished(root: Path) -> None:
    """Temporary folders left by a crash while writing a checkpoint."""
    if root.is_dir():
        for child in root.glob(f".{PREFIX}*.tmp"):
            shutil.rmtree(child, ignore_errors=True)


def rng_state() -> dict[str, Any]:
    # Plain types and tensors only, so the file loads with torch.load(weights_only=True).
    kind, keys, position, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _describe(path: Path) -> dict[str, Any]:
    return {"bytes": path.stat().st_size, "sha256": _sha256(path)}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sync_folder(folder: Path) -> None:
    # Flush the files to disk before the rename publishes them: a power cut must not leave a
    # renamed folder whose files are still only in the page cache.
    for path in folder.iterdir():
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())
