"""Keep large freed blocks of host memory for reuse instead of mapping them afresh every step.

glibc's malloc serves any block above its mmap threshold (32 MB at most under its own dynamic
rule) with a fresh mapping from the kernel, and unmaps it when freed. Full fine-tuning allocates
the word-embedding gradient anew at every step (30,522 x 384 floats, 47 MB, for MiniLM), so every
step page-faults and zeroes 47 MB of new pages: 19 ms, against 3 ms for zeroing memory already
mapped, on the 2-core machine of bench/RESULTS.md. Raising both thresholds lets the heap keep the
block. What the heap keeps is memory the process had already used, so its peak does not grow.
"""

from __future__ import annotations

import ctypes
import os
import platform

# From glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# Blocks up to 1 GiB come from the heap (BERT-base's embedding gradient is 94 MB); up to 2 GiB of
# free memory at the heap's top stays mapped. mallopt takes a C int.
MMAP_THRESHOLD = 1 << 30
TRIM_THRESHOLD = 2**31 - 1
# Set by a user who tunes malloc by hand: theirs wins.
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def keep_freed_blocks() -> bool:
    """Raise glibc malloc's mmap and trim thresholds for this process; True if that took effect.

    Nothing happens off glibc (macOS, musl), or when the environment already sets either
    threshold (`MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_`, or malloc in `GLIBC_TUNABLES`).
    """
    if any(name in os.environ for name in USER_SETTINGS) or "malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    # Trim first: once the mmap threshold is fixed, glibc no longer raises the trim one by itself.
    return bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)) and bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
