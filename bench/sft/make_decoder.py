"""A small random-initialised GPT-2 with a byte-level tokenizer (no merges: one token per character), for
the instruction-following benchmark.

    python bench/sft/make_decoder.py OUTPUT_DIR [--layers 4] [--width 128] [--heads 4]

One token per character lets a small model spell: reverse a word, add digit by digit. The tokenizer is
trained by tunesmith (the same code as `tunesmith tokenizer train --kind bpe`) with a vocabulary of the
256 bytes and the special tokens only.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from transformers import GPT2Config, GPT2LMHeadModel, set_seed

from tunesmith.pretrain.tokenizer_training import BPE_SPECIALS, train_tokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--positions", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    set_seed(args.seed)
    tokenizer = train_tokenizer(["a"], vocab_size=256 + len(BPE_SPECIALS), kind="bpe", lowercase=False)
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=args.positions, n_embd=args.width, n_layer=args.layers,
        n_head=args.heads, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    model = GPT2LMHeadModel(config)
    model.save_pretrained(args.output_dir, safe_serialization=True)
    tokenizer.save_pretrained(args.output_dir)
    parameters = sum(p.numel() for p in model.parameters())
    print(
        f"{args.output_dir}: GPT-2, {args.layers} layers x {args.width}, {parameters / 1e6:.2f}M parameters, "
        f"{len(tokenizer)} tokens"
    )


if __name__ == "__main__":
    main()
