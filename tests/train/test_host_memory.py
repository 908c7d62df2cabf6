import platform
import subprocess
import sys

import pytest

from tunesmith.train import host_memory
from tunesmith.train.host_memory import keep_freed_blocks

glibc_only = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="needs glibc (Linux)")

# Allocates and frees MiniLM's embedding gradient, a 30,522 x 384 float tensor, 12 times in a
# fresh process, and prints the pages each allocation faulted in.
FAULTS_PER_ALLOCATION = """
import resource, sys, torch
from tunesmith.train.host_memory import keep_freed_blocks
if sys.argv[1] == "keep":
    assert keep_freed_blocks()
faults = []
for _ in range(12):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    gradient = torch.zeros(30522, 384)
    del gradient
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(*faults)
"""


def faults_per_allocation(mode: str) -> list[int]:
    done = subprocess.run(
        [sys.executable, "-c", FAULTS_PER_ALLOCATION, mode], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return [int(n) for n in done.stdout.split()]


@glibc_only
def test_a_freed_embedding_gradient_is_reused_instead_of_faulted_in_again() -> None:
    pages = 30522 * 384 * 4 // 4096
    # glibc's default maps every 47 MB block afresh: each allocation faults in all its pages.
    assert all(n >= pages for n in faults_per_allocation("default"))
    # Kept blocks: once the heap holds two of them (the aligned request does not fit a freed block
    # exactly until two neighbours merge), allocations reuse mapped pages.
    kept = faults_per_allocation("keep")
    assert kept[0] >= pages
    assert all(n < pages // 100 for n in kept[-3:]), kept


def never(*args: object) -> None:
    raise AssertionError("libc was loaded")


def test_a_user_who_tunes_malloc_keeps_their_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(host_memory.ctypes, "CDLL", never)
    for name, value in [
        ("MALLOC_MMAP_THRESHOLD_", "131072"),
        ("MALLOC_TRIM_THRESHOLD_", "131072"),
        ("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=131072"),
    ]:
        with monkeypatch.context() as env:
            env.setenv(name, value)
            assert keep_freed_blocks() is False


def test_nothing_happens_off_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(host_memory.platform, "libc_ver", lambda: ("", ""))
    monkeypatch.setattr(host_memory.ctypes, "CDLL", never)
    for name in (*host_memory.USER_SETTINGS, "GLIBC_TUNABLES"):
        monkeypatch.delenv(name, raising=False)
    assert keep_freed_blocks() is False
