"""Which mixed precision a run uses: bf16 or fp16 autocast only where the hardware is fast at it.

bf16 autocast on a CPU without native bf16 instructions is emulated and runs slower than
fp32, so "auto" turns it on only for CUDA GPUs and for CPUs with AMX or AVX512-BF16.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from tunesmith.errors import UserError

logger = logging.getLogger(__name__)
# /proc/cpuinfo flags of the instructions that compute bf16 natively.
FAST_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_has_fast_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    try:
        text = cpuinfo.read_text()
    except OSError:  # not Linux: no way to tell, so assume not
        return False
    flags = {flag for line in text.splitlines() if line.startswith("flags") for flag in line.split()}
    return any(flag in flags for flag in FAST_BF16_FLAGS)


def resolve_precision(requested: str, cuda: bool | None = None, fast_cpu_bf16: bool | None = None) -> str:
    """Accelerate's mixed_precision ("no", "bf16" or "fp16") for the config's `training.mixed_precision`."""
    cuda = torch.cuda.is_available() if cuda is None else cuda
    if requested == "fp16" and not cuda:
        raise UserError(
            "training.mixed_precision: fp16 needs a CUDA GPU, and none is visible. "
            "On a CPU use bf16 (fast only with AMX or AVX512-BF16), or auto to choose."
        )
    if requested == "auto" and cuda:
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if cuda or requested in ("no", "fp16"):
        return requested
    fast = cpu_has_fast_bf16() if fast_cpu_bf16 is None else fast_cpu_bf16
    if requested == "auto":
        return "bf16" if fast else "no"
    if not fast:
        logger.warning("bf16 on this CPU is emulated and slower than fp32; training.mixed_precision=auto avoids it")
    return requested
