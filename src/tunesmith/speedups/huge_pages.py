"""Transparent huge pages for torch's large CPU blocks.

torch's CPU allocator asks Linux for transparent huge pages for blocks of 2 MB and more when
THP_MEM_ALLOC_ENABLE is set. It reads the variable once, at its first allocation, so
`import tunesmith` calls `ask_for_huge_pages` before anything imports torch; no config switch
can decide it that early. Large blocks mapped in huge pages are zeroed far faster than in 4 kB
ones (the embedding gradient's buffer, activations): whole MiniLM runs on the CPU trained faster
with less peak memory (bench/RESULTS.md). It changes nothing but where memory is mapped.
"""

from __future__ import annotations

import os

VARIABLE = "THP_MEM_ALLOC_ENABLE"


def ask_for_huge_pages() -> None:
    """Set torch's variable to ask for huge pages, unless the user set it: their value, 0 included, is kept."""
    os.environ.setdefault(VARIABLE, "1")
