"""The Accelerator a run trains with: one process, several CPU processes, or GPUs."""

from __future__ import annotations

import logging
import os

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import DataLoaderConfiguration, DistributedDataParallelKwargs, TorchDynamoPlugin

from tunesmith.errors import UserError

logger = logging.getLogger(__name__)


def make_accelerator(
    gradient_accumulation_steps: int,
    unused_parameters: bool = False,
    mixed_precision: str = "no",
    compile: bool = False,
) -> Accelerator:
    """An Accelerator that also spans several CPU processes when launched by torchrun or accelerate.

    Without a GPU, Accelerate only goes multi-process (gloo) when told it is on the CPU;
    otherwise each process would train alone and all would write the same run folder.
    Batches are split among processes, so that N processes with batch size B step on the
    same examples as one process with batch size N*B: the same run, only faster.
    """
    several = int(os.environ.get("WORLD_SIZE", "1")) > 1
    here, gpus = int(os.environ.get("LOCAL_WORLD_SIZE", "1")), torch.cuda.device_count()
    if torch.cuda.is_available() and here > gpus:
        # Otherwise NCCL fails later with "Duplicate GPU detected" or an invalid device ordinal.
        raise UserError(
            f"{here} processes were launched on this machine, but it has {gpus} visible GPU(s), one per process. "
            f"Launch at most {gpus} (--nproc_per_node / --num_processes), or hide the GPUs "
            "(CUDA_VISIBLE_DEVICES=) to train on CPU processes."
        )
    # Accelerate keeps one settings singleton per process and refuses a second run with other
    # settings (precision, compile); the Trainer resets it the same way. The process group stays.
    AcceleratorState._reset_state(reset_partial_state=False)
    accelerator = Accelerator(
        gradient_accumulation_steps=gradient_accumulation_steps,
        cpu=several and not torch.cuda.is_available(),
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=unused_parameters)],
        dataloader_config=DataLoaderConfiguration(split_batches=True),
        mixed_precision=mixed_precision,
        # Dynamic shapes: batches differ in length, and a static compile would recompile for each.
        dynamo_plugin=TorchDynamoPlugin(backend="inductor", dynamic=True) if compile else None,
    )
    fsdp = os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"  # set by an FSDP launch config
    if fsdp and not torch.cuda.is_available() and accelerator.is_main_process:
        # Accelerate drops FSDP without a word on CPUs; say what runs instead.
        logger.warning(
            "FSDP needs GPUs, and none is visible: Accelerate ignores it here, so each of the %d process(es) "
            "holds the whole model and they train with plain data parallelism (DDP over gloo).",
            accelerator.num_processes,
        )
    return accelerator
