import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tunesmith.train.measure import parameter_counts

linux = pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads Linux's /proc")


def touched(megabytes: int) -> bytearray:
    block = bytearray(megabytes * 2**20)
    block[::4096] = b"\x01" * len(range(0, len(block), 4096))  # every page written, so resident
    return block


@linux
def test_the_peak_grows_with_memory_a_fresh_process_touches() -> None:
    # In a fresh process: this one's peak may already stand above anything touched here.
    code = (
        "from tunesmith.train.measure import peak_memory_mb, peak_resident_mb; import torch\n"
        "before = peak_resident_mb()\n"
        "block = bytearray(200 * 2**20); block[::4096] = bytes(len(range(0, len(block), 4096)))\n"
        "print(before, peak_resident_mb(), peak_memory_mb(torch.device('cpu')))"
    )
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert child.returncode == 0, child.stderr[-2000:]
    before, after, reported = (float(word) for word in child.stdout.split()[-3:])
    assert after >= before + 190
    assert reported == after


@linux
def test_a_process_launched_from_a_large_one_reports_its_own_peak() -> None:
    # The kernel hands the launcher's size to the child's ru_maxrss through fork and exec.
    block = touched(800)
    code = "from tunesmith.train.measure import peak_resident_mb; print(peak_resident_mb())"
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert child.returncode == 0, child.stderr[-2000:]
    own = float(child.stdout.split()[-1])
    assert 20 < own < 600  # the child imports torch (about 220 MB here), not the 800 MB held here
    del block


def test_parameter_counts_tell_trainable_from_frozen() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    model[0].requires_grad_(False)
    assert parameter_counts(model) == {"trainable_parameters": 10, "total_parameters": 26}
