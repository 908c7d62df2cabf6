"""One process of tests/train/test_checkpoints.py's FSDP test, launched by torch.distributed.run.

Trains a small model sharded with FSDP2 over CPU processes (gloo), writes a checkpoint at
step 3, trains on to step 5; then a fresh sharded model, optimizer and schedule resume from
the checkpoint and train the same 2 steps. The main process writes both runs' final weights
and what the checkpoint holds to the JSON file named by the first argument.

Accelerate offers FSDP on GPUs only, so `FsdpProcesses` stands in for its Accelerator: the
few members that `checkpoints` reads, answered as Accelerate answers them under FSDP2.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from accelerate.utils import DistributedType
from torch import nn
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard

from tunesmith.train import checkpoints


class FsdpProcesses:
    distributed_type = DistributedType.FSDP

    @property
    def process_index(self) -> int:
        return dist.get_rank()

    @property
    def num_processes(self) -> int:
        return dist.get_world_size()

    @property
    def is_main_process(self) -> bool:
        return dist.get_rank() == 0

    def wait_for_everyone(self) -> None:
        dist.barrier()

    def unwrap_model(self, model: nn.Module) -> nn.Module:
        return model  # FSDP2 shards the module in place

    def get_state_dict(self, model: nn.Module) -> dict[str, torch.Tensor]:
        options = StateDictOptions(full_state_dict=True, broadcast_from_rank0=True, cpu_offload=True)
        return get_model_state_dict(model, options=options)


def sharded_objects(seed: int) -> tuple[nn.Module, torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    torch.manual_seed(seed)
    # Odd sizes, so that the two processes' shards differ in size.
    model = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3))
    mesh = init_device_mesh("cpu", (dist.get_world_size(),))
    for layer in (model[0], model[2], model):
        fully_shard(layer, mesh=mesh)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (1 + step))
    return model, optimizer, scheduler


def train(objects: tuple, first_step: int, last_step: int) -> None:
    model, optimizer, scheduler = objects
    for step in range(first_step, last_step):
        # Each process its own batch for each step, the same in both runs.
        generator = torch.Generator().manual_seed(1000 * step + dist.get_rank())
        inputs, targets = torch.randn(4, 5, generator=generator), torch.randn(4, 3, generator=generator)
        nn.functional.mse_loss(model(inputs), targets).backward()
        optimizer.step()
        optimizer.zero_grad()
        scheduler.step()


def whole_weights(model: nn.Module) -> dict[str, list]:
    weights = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return {name: tensor.tolist() for name, tensor in weights.items()}


def main(result: Path) -> None:
    dist.init_process_group("gloo")
    processes = FsdpProcesses()
    uninterrupted = sharded_objects(seed=0)
    train(uninterrupted, 0, 3)
    saved = checkpoints.save(result.parent / "checkpoints", {"step": 3}, *uninterrupted, processes)
    train(uninterrupted, 3, 5)
    expected = whole_weights(uninterrupted[0])

    resumed = sharded_objects(seed=1)
    progress, _ = checkpoints.restore(saved, *resumed, processes)
    train(resumed, 3, 5)
    got = whole_weights(resumed[0])
    if processes.is_main_process:
        stored = torch.load(saved.path / checkpoints.OPTIMIZER, weights_only=True)["optimizer"]
        moments = {name: list(state["exp_avg"].shape) for name, state in stored["state"].items()}
        result.write_text(json.dumps({"expected": expected, "got": got, "moments": moments, "progress": progress}))
    # Both processes are done once they meet here. Then they leave without the C++ teardown: gloo's
    # teardown aborted a process now and then, its result already written ("terminate called without an
    # active exception": 3 of 60 launches on a loaded machine, with destroy_process_group after this barrier).
    dist.barrier()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
