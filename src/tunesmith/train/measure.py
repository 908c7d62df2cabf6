"""Resource figures for metrics.json: peak memory and parameter counts."""

from __future__ import annotations

import resource
import sys

import torch
from torch import nn


def peak_memory_mb(device: torch.device) -> float:
    """Peak accelerator memory on CUDA, else the process's peak resident set size."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return peak_resident_mb()


def peak_resident_mb() -> float:
    """This process's peak resident set size, in MB.

    On Linux it is the memory map's high-water mark (VmHWM): getrusage's ru_maxrss also
    counts the process that launched this one, whose size the kernel carries over through
    fork and exec, so a small run started from a 5 GB notebook would report 5 GB.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**10  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes.
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def parameter_counts(model: nn.Module) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"trainable_parameters": trainable, "total_parameters": total}
