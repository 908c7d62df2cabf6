"""Write the project's small instruction set: addition, word reversal and unit conversion, in a fixed format.

    python bench/sft/make_instructions.py OUTPUT_DIR [--train 30000] [--held-out 500] [--seed 0] [--plain-sums]

Writes train.jsonl, validation.jsonl and test.jsonl (prompt/completion rows). Held-out prompts never
occur in train: the three files are drawn without replacement from one pool of distinct prompts.
Each prompt ends with "Answer:" and each completion is a space and the answer, nothing else; an addition's
answer shows its working first ("8+7=15, 4+5+1=10, so 105"): a 0.9M-parameter model trained for 25 minutes
learnt to write sums directly (--plain-sums) for 5.6% of held-out pairs, and with the working for 99.3%
(docs/causal.md).
"""

from __future__ import annotations

import argparse
import json
import random
import string
from pathlib import Path

UNITS = [("km", "m", 1000), ("m", "cm", 100), ("kg", "g", 1000), ("l", "ml", 1000), ("cm", "mm", 10)]


def addition(rng: random.Random, worked: bool = True) -> tuple[str, str]:
    """The sum, after its working in a fixed format: units, then tens with the carry, then the result."""
    a, b = rng.randint(0, 99), rng.randint(0, 99)
    if not worked:
        return f"Add {a} and {b}.", str(a + b)
    units = a % 10 + b % 10
    tens = a // 10 + b // 10 + units // 10
    return f"Add {a} and {b}.", f"{a % 10}+{b % 10}={units}, {a // 10}+{b // 10}+{units // 10}={tens}, so {a + b}"


def reversal(rng: random.Random) -> tuple[str, str]:
    word = "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 6)))
    return f"Reverse the word {word}.", word[::-1]


def conversion(rng: random.Random) -> tuple[str, str]:
    source, target, factor = rng.choice(UNITS)
    amount = rng.randint(1, 999)
    return f"Convert {amount} {source} to {target}.", str(amount * factor)


def example(rng: random.Random, worked: bool) -> dict[str, str]:
    task = rng.choice(["addition", "reversal", "conversion"])
    question, answer = (
        addition(rng, worked) if task == "addition" else {"reversal": reversal, "conversion": conversion}[task](rng)
    )
    return {"prompt": f"Instruction: {question}\nAnswer:", "completion": f" {answer}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("--train", type=int, default=30000)
    parser.add_argument("--held-out", type=int, default=500, help="rows of validation and of test each")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plain-sums", action="store_true", help="answer additions with the sum alone")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    wanted = args.train + 2 * args.held_out
    pool: dict[str, dict[str, str]] = {}
    while len(pool) < wanted:
        row = example(rng, worked=not args.plain_sums)
        pool.setdefault(row["prompt"], row)
    rows = list(pool.values())
    rng.shuffle(rows)
    splits = {
        "validation": rows[: args.held_out],
        "test": rows[args.held_out : 2 * args.held_out],
        "train": rows[2 * args.held_out :],
    }
    args.output_dir.mkdir(parents=True, exist_ok=True)
    for name, split in splits.items():
        with open(args.output_dir / f"{name}.jsonl", "w", encoding="utf-8") as file:
            file.writelines(json.dumps(row) + "\n" for row in split)
        print(f"{args.output_dir / (name + '.jsonl')}: {len(split)} rows")


if __name__ == "__main__":
    main()
