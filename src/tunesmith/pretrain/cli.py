"""`tunesmith pretrain` and `tunesmith tokenizer train`: their arguments and what they run."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tunesmith.commands import silence_libraries, split_items
from tunesmith.errors import UserError

PRETRAIN_FLAGS = {
    "data": "data.train",
    "validation": "data.validation",
    "objective": "objective",
    "model": "model",
    "tokenizer": "tokenizer",
    "name": "name",
    "output_dir": "output_dir",
    "max_time": "training.max_time",
    "max_length": "training.max_length",
    "batch_size": "training.batch_size",
    "learning_rate": "training.learning_rate",
    "seed": "training.seed",
}


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    pretrain = commands.add_parser(
        "pretrain",
        parents=[common],
        help="pretrain a model on raw text (masked or causal LM), or continue a BERT's pretraining",
        description="Pretrain from a YAML config, flags, or both (flags win, then key=value); see docs/pretraining.md.",
        epilog="example: tunesmith pretrain --data corpus.txt --tokenizer tok/ training.max_time=45m",
    )
    pretrain.add_argument("items", nargs="*", metavar="CONFIG|KEY=VALUE", help="a YAML config and/or overrides")
    pretrain.add_argument("--data", metavar="FILE", nargs="+", help="corpus files (text, a table's text column, CoNLL)")
    pretrain.add_argument("--validation", metavar="FILE", nargs="+", help="held-out text (default: 2%% of the data)")
    pretrain.add_argument("--objective", choices=["mlm", "causal"], help="masked LM (default) or causal LM")
    pretrain.add_argument("--model", metavar="NAME_OR_PATH", help="a BERT model to continue (default: from scratch)")
    pretrain.add_argument("--tokenizer", metavar="DIR", help="tokenizer folder (default: the model's own)")
    pretrain.add_argument("--max-time", metavar="DURATION", help="time budget, e.g. 45m or 1h30m")
    pretrain.add_argument("--max-length", type=int, metavar="TOKENS", help="block length (default 128)")
    pretrain.add_argument("--batch-size", type=int, metavar="N")
    pretrain.add_argument("--learning-rate", type=float, metavar="LR")
    pretrain.add_argument("--seed", type=int)
    pretrain.add_argument("--name", help="run name (default: pretrain-<objective>-<first corpus file>)")
    pretrain.add_argument("--output-dir", metavar="DIR", help="run folder (default: runs/<name>)")
    pretrain.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    pretrain.add_argument("--resume", action="store_true", help="insist on resuming an unfinished run")
    pretrain.set_defaults(handler=run_pretrain)

    tokenizer = commands.add_parser("tokenizer", parents=[common], help="train a tokenizer on a corpus")
    actions = tokenizer.add_subparsers(dest="action", required=True, metavar="ACTION")
    train = actions.add_parser(
        "train",
        parents=[common],
        help="learn a WordPiece or byte-level BPE vocabulary from text",
        epilog="example: tunesmith tokenizer train --files corpus.txt --vocab-size 16000 --output-dir tok/",
    )
    train.add_argument("--files", nargs="+", required=True, metavar="FILE", help="corpus files")
    train.add_argument("--vocab-size", type=int, required=True, metavar="N")
    train.add_argument("--output-dir", required=True, metavar="DIR", help="a new or empty folder")
    train.add_argument("--kind", choices=["wordpiece", "bpe"], default="wordpiece",
                       help="wordpiece (BERT-style, one token per CJK character; default) or bpe")  # fmt: skip
    train.add_argument("--cased", action="store_true", help="keep case and accents (default: lower-case)")
    train.add_argument("--min-frequency", type=int, default=2, metavar="N")
    train.add_argument("--format", default="auto", choices=["auto", "text", "csv", "tsv", "jsonl", "parquet", "conll"],
                       help="corpus format (default: from the extension)")  # fmt: skip
    train.add_argument("--text-column", default="text", metavar="NAME")
    train.add_argument("--strip-position-digits", action="store_true", help="CoNLL tokens such as 科0 (Weibo NER)")
    train.set_defaults(handler=run_tokenizer_train)


def run_pretrain(args: argparse.Namespace) -> None:
    from tunesmith.pretrain.config import load_pretrain_config

    config_path, assignments = split_items(args.items)
    given = {key: value for key, value in vars(args).items() if value is not None}
    flags = {PRETRAIN_FLAGS[key]: value for key, value in given.items() if key in PRETRAIN_FLAGS}
    if config_path is None and "data.train" not in flags:
        raise UserError("Nothing to pretrain on: give a config file (tunesmith pretrain CONFIG) or --data FILE.")
    cfg = load_pretrain_config(config_path, flags, assignments)
    silence_libraries()
    from tunesmith.recipes.pretrain import pretrain

    run = pretrain(cfg, overwrite=args.overwrite, resume=args.resume)
    from accelerate import PartialState

    if PartialState().is_main_process:
        held_out = run.metrics["validation"]
        print(f"\nPretrained: {run.path / 'model'} (fine-tune it with --model {run.path / 'model'})")
        print(json.dumps({"validation": held_out, "tokens_per_s": run.metrics["training"]["tokens_per_s"]}, indent=2))


def run_tokenizer_train(args: argparse.Namespace) -> None:
    from tunesmith.pretrain.config import CorpusConfig
    from tunesmith.pretrain.tokenizer_training import check_tokenizer_folder

    output = Path(args.output_dir)
    check_tokenizer_folder(output)
    corpus = CorpusConfig(train=args.files, format=args.format, text_column=args.text_column,
                          strip_position_digits=args.strip_position_digits)  # fmt: skip
    from tunesmith.pretrain.corpus import read_corpus
    from tunesmith.pretrain.tokenizer_training import train_tokenizer

    documents = read_corpus(corpus.train, corpus)
    tokenizer = train_tokenizer(documents, args.vocab_size, args.kind, not args.cased, args.min_frequency)
    output.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(output)
    print(f"Tokenizer ({args.kind}, {len(tokenizer)} tokens, from {len(documents)} documents): {output}")
