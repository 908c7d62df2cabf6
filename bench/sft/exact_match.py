"""Exact match of greedy generations on a prompt/completion file, for any causal model folder or finished run.

    python bench/sft/exact_match.py MODEL_OR_RUN DATA.jsonl [--max-new-tokens 12]

For the "before SFT" figure: the random-initialised decoder of make_decoder.py, scored exactly as a run's
evaluation scores (tunesmith.causal.generation, stopping at EOS), by task of the instruction set too.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from transformers import AutoModelForCausalLM, AutoTokenizer

from tunesmith.causal.generation import GenerationSettings, generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="a model folder, or a run folder (its model/ is used)")
    parser.add_argument("data", type=Path)
    parser.add_argument("--max-new-tokens", type=int, default=12)
    args = parser.parse_args()
    folder = args.model / "model" if (args.model / "model" / "config.json").is_file() else args.model
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    rows = [json.loads(line) for line in args.data.read_text(encoding="utf-8").splitlines()]
    settings = GenerationSettings(max_new_tokens=args.max_new_tokens)
    generated = generate(model, tokenizer, [row["prompt"] for row in rows], settings, [tokenizer.eos_token_id], False)
    hits: dict[str, list[bool]] = defaultdict(list)
    for row, text in zip(rows, generated, strict=True):
        kind = row["prompt"].split(":", 1)[1].split()[0]  # Add / Reverse / Convert
        hits[kind].append(text.strip() == row["completion"].strip())
    every = [hit for kind_hits in hits.values() for hit in kind_hits]
    report = {"exact_match": round(sum(every) / len(every), 4), "examples": len(every)}
    report["by_task"] = {kind: round(sum(h) / len(h), 4) for kind, h in sorted(hits.items())}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
