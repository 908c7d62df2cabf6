"""`tunesmith generate` and `tunesmith inspect`: their arguments and what they run."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tunesmith.commands import check_output_file, silence_libraries, split_items, write_output
from tunesmith.errors import UserError
from tunesmith.tasks import TASKS


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    generate = commands.add_parser(
        "generate",
        parents=[common],
        help="generate text with a finished causal run",
        description="Continue prompts with a run of task causal: greedy by default, or sampled.",
        epilog='example: tunesmith generate runs/sft --prompt "Add 2 and 3." --max-new-tokens 16',
    )
    generate.add_argument("run_dir", metavar="RUN_DIR")
    source = generate.add_mutually_exclusive_group(required=True)
    source.add_argument("--prompt", action="append", metavar="TEXT", help="a prompt (repeatable)")
    source.add_argument("--input", metavar="FILE", help="a file of prompts (CSV, TSV, JSONL, Parquet)")
    generate.add_argument("--prompt-column", metavar="NAME", help="prompt column of --input (default: the run's)")
    generate.add_argument("--output", metavar="FILE", help="write the rows with their generations here as JSON lines")
    generate.add_argument("--max-new-tokens", type=int, metavar="N", help="default: the run's causal.max_new_tokens")
    generate.add_argument("--sample", action="store_true", help="sample instead of greedy decoding")
    generate.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default 1.0)")
    generate.add_argument("--top-k", type=int, metavar="K", help="sample from the K likeliest tokens")
    generate.add_argument("--top-p", type=float, metavar="P", help="sample from the smallest set of probability P")
    generate.add_argument("--stop", action="append", metavar="TEXT", help="cut the generation at this text")
    chat = generate.add_mutually_exclusive_group()
    chat.add_argument("--chat", dest="chat", action="store_true", default=None, help="prompts are user turns")
    chat.add_argument("--no-chat", dest="chat", action="store_false", help="prompts are raw text")
    generate.add_argument("--seed", type=int, help="seed for sampling")
    generate.set_defaults(handler=run_generate)

    inspect = commands.add_parser(
        "inspect",
        parents=[common],
        help="show encoded training examples with the tokens that carry loss (task causal)",
        description="The label audit: a few training examples as the model sees them, template applied, "
        "EOS visible, learnt tokens marked. Trains nothing and writes nothing.",
        epilog="example: tunesmith inspect sft.yaml --examples 5",
    )
    inspect.add_argument("items", nargs="*", metavar="CONFIG|KEY=VALUE", help="a YAML config and/or overrides")
    inspect.add_argument("--examples", type=int, default=3, metavar="N", help="how many (default 3)")
    inspect.set_defaults(handler=run_inspect)


def run_generate(args: argparse.Namespace) -> None:
    from tunesmith.causal.generation import GenerationSettings
    from tunesmith.data.readers import check_exists
    from tunesmith.runs import check_finished, run_config

    run_dir = Path(args.run_dir)
    check_finished(run_dir)
    config = run_config(run_dir)
    if not TASKS[config.task].generative:
        raise UserError(f"{run_dir} is a {config.task} run; generate continues text with a run of task causal.")
    settings = GenerationSettings(
        max_new_tokens=args.max_new_tokens or config.causal.max_new_tokens, sample=args.sample,
        temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, stop=args.stop or [], seed=args.seed,
    )  # fmt: skip
    settings.check()
    if args.prompt:
        rows = [{"prompt": prompt} for prompt in args.prompt]
        prompts, output = args.prompt, check_output_file(args.output, run_dir, {})
    else:
        source = Path(args.input)
        check_exists(source)
        output = check_output_file(args.output, run_dir, {"--input": source})
        prompts, rows = read_prompts(source, args.prompt_column or config.data.text_column)
    silence_libraries(uses_datasets=False)
    from tunesmith.predictor import load

    generated = load(run_dir).generate(prompts, settings, chat=args.chat)
    if output is not None:
        lines = [
            json.dumps({**row, "generated_text": text}, ensure_ascii=False)
            for row, text in zip(rows, generated, strict=True)
        ]
        write_output(output, "\n".join(lines) + "\n")
        return
    for text in generated:
        sys.stdout.write(text + "\n")


def read_prompts(path: Path, column: str) -> tuple[list[str], list[dict]]:
    from tunesmith.data.readers import read_table
    from tunesmith.data.splits import check_texts

    table = read_table(path)
    if column not in table.columns:
        raise UserError(
            f'{path}: no column "{column}" (columns: {", ".join(sorted(table.columns)[:12])}). '
            "Name the prompt column with --prompt-column."
        )
    prompts = table.columns[column]
    check_texts(prompts, lambda index: table.locate(index, column))
    rows = [{name: values[index] for name, values in table.columns.items()} for index in range(len(table))]
    return prompts, rows


def run_inspect(args: argparse.Namespace) -> None:
    from tunesmith.config import load_config

    config_path, assignments = split_items(args.items)
    if config_path is None:
        raise UserError("Give the config to inspect: tunesmith inspect CONFIG.")
    cfg = load_config(config_path, {}, assignments)
    if not TASKS[cfg.task].generative:
        raise UserError(f"inspect shows what task causal learns; {config_path} has task {cfg.task}.")
    if args.examples <= 0:
        raise UserError(f"--examples must be at least 1 (got {args.examples}).")
    silence_libraries()
    from tunesmith.causal.audit import audit
    from tunesmith.data.splits import load_splits
    from tunesmith.models.backbones import check_loadable, load_tokenizer
    from tunesmith.tasks import get_task, reading_options

    backbone = check_loadable(cfg.model)
    task = get_task(cfg)
    task.check_backbone(backbone)
    tokenizer = load_tokenizer(backbone)
    train = load_splits(cfg.data, cfg.training.seed, **reading_options(cfg)).splits["train"]
    task.fit_labels(train, cfg.data.train)
    shown = task.tokenize(train.select(range(min(args.examples, len(train)))), tokenizer, training=False)
    template = cfg.causal.chat_template or ("the tokenizer's own" if tokenizer.chat_template else "none (plain text)")
    stops = tokenizer.convert_ids_to_tokens(task.stop_token_ids)
    print(audit(tokenizer, [shown[index] for index in range(len(shown))], template, stops))
