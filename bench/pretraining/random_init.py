"""The same architecture as a pretrained model folder, with BERT's random initialisation instead of its weights.

    python bench/pretraining/random_init.py PRETRAINED_MODEL_DIR OUT_DIR [--seed 42]

The baseline of docs/pretraining.md: fine-tuned with the same settings and seeds as the pretrained
model, it shows what pretraining is worth. The tokenizer is the pretrained model's.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForMaskedLM, AutoTokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pretrained", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    if args.out.exists() and any(args.out.iterdir()):
        raise SystemExit(f"{args.out} is not empty: choose a new folder")
    torch.manual_seed(args.seed)
    config = AutoConfig.from_pretrained(args.pretrained, trust_remote_code=False)
    AutoModelForMaskedLM.from_config(config).save_pretrained(args.out)
    AutoTokenizer.from_pretrained(args.pretrained, trust_remote_code=False).save_pretrained(args.out)
    print(f"{args.out}: {config.model_type}, random weights (seed {args.seed}), tokenizer of {args.pretrained}")


if __name__ == "__main__":
    main()
