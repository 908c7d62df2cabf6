"""Small SFT data: prompt/completion rows and chats (the tiny decoders are in tests/conftest.py)."""

from __future__ import annotations

import json
import random
from pathlib import Path

WORDS = [
    "the",
    "cat",
    "dog",
    "sat",
    "on",
    "a",
    "mat",
    "and",
    "ran",
    "far",
    "away",
    "to",
    "see",
    "big",
    "red",
    "blue",
    "sun",
    "moon",
    "tree",
    "house",
]


def prompt_completion_rows(count: int, seed: int = 0) -> list[dict[str, str]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        a, b = rng.randint(0, 9), rng.randint(0, 9)
        rows.append({"prompt": f"{a}+{b}=", "completion": f"{a + b}"})
    return rows


def chat_rows(count: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        word = rng.choice(WORDS)
        rows.append({"messages": [
            {"role": "system", "content": "answer"},
            {"role": "user", "content": f"say {word}"},
            {"role": "assistant", "content": word},
            {"role": "user", "content": "again"},
            {"role": "assistant", "content": f"{word} {word}"},
        ]})  # fmt: skip
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path
