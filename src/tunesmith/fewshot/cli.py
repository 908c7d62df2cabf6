"""The little-data commands: `tunesmith fewshot`, `tunesmith select`, and `predict --zero-shot`'s handler.

Registered by tunesmith.cli as pretrain/cli.py's commands are; the shared helpers (output checks,
formatting, quieting the libraries) stay in tunesmith.cli and are imported when a command runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tunesmith.commands import (
    check_output_file,
    format_predictions,
    run_data_config,
    show_predictions,
    silence_libraries,
    split_items,
    write_output,
)
from tunesmith.config import FORMATS, DataConfig
from tunesmith.errors import UserError, brief
from tunesmith.tasks import TASKS


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    fewshot = commands.add_parser(
        "fewshot",
        parents=[common],
        help="train one config at k examples per class over several seeds; mean ± std table",
        description="Train the config once per (k, seed) with data.shots_per_class=k and training.seed=seed (k "
        "training rows of each label, drawn with that seed), whatever its method (finetune, contrastive, zero_shot), "
        "and tabulate the mean ± standard deviation of its metric over the seeds (fewshot.md, fewshot.json). Finished "
        "runs in the folder are read back, not retrained.",
        epilog="example: tunesmith fewshot configs/agnews-fewshot.yaml --shots 8,64 --seeds 5",
    )
    fewshot.add_argument("items", nargs="+", metavar="CONFIG|KEY=VALUE", help="a YAML config and/or overrides")
    fewshot.add_argument("--shots", default="8", metavar="K,K,...", help="examples per class (default 8)")
    fewshot.add_argument("--seeds", type=int, default=5, metavar="N", help="seeds 0 to N-1 (default 5)")
    fewshot.add_argument("--output-dir", metavar="DIR", help="where runs and table go (default runs/<name>-fewshot)")
    fewshot.add_argument("--overwrite", action="store_true", help="retrain runs that already finished")
    fewshot.add_argument(
        "--zero-shot-baseline", action="store_true", help="also a zero-shot run of the config (its zero_shot options)"
    )
    fewshot.set_defaults(handler=run_fewshot)

    select = commands.add_parser(
        "select",
        parents=[common],
        help="choose the unlabelled texts most worth labelling next (active learning)",
        description="Score every text of an unlabelled pool with a finished classification run and write the K "
        "most worth labelling, best first, with the pool's columns, a rank and the criterion's score: entropy "
        "(most uncertain), margin (smallest gap between the two likeliest labels), diversity (the text nearest "
        "each of K k-means centres of the sentence embeddings) or random.",
        epilog="example: tunesmith select runs/agnews-8shot --pool pool.csv --k 50 --by entropy --output next.csv",
    )
    select.add_argument("run_dir", metavar="RUN_DIR")
    select.add_argument(
        "--pool", required=True, metavar="FILE", help="unlabelled texts (same formats as training data)"
    )
    select.add_argument("--k", type=int, required=True, metavar="N", help="how many texts to choose")
    select.add_argument("--by", default="entropy", choices=("entropy", "margin", "diversity", "random"))
    select.add_argument("--text-column", metavar="NAME", help="text column of --pool (default: the run's)")
    select.add_argument("--format", choices=FORMATS, help="format of --pool (default: from the extension)")
    select.add_argument("--seed", type=int, default=0, help="seed of random and of k-means (default 0)")
    select.add_argument("--output", metavar="FILE", help="write the chosen rows here (.csv, else JSON lines)")
    select.set_defaults(handler=run_select)


def predict_zero_shot(args: argparse.Namespace) -> None:
    """predict --zero-shot: no run folder; the labels, templates and encoder come from the flags."""
    from tunesmith.data.readers import check_exists
    from tunesmith.data.splits import check_texts, read_texts
    from tunesmith.fewshot.labels import parse_labels

    if not args.zero_shot:
        raise UserError("--labels, --template and --model are zero-shot options: add --zero-shot (and no RUN_DIR).")
    if args.run_dir is not None:
        raise UserError(
            f"--zero-shot classifies with label prompts, not a run: drop {args.run_dir} (or drop --zero-shot to "
            "predict with that run)."
        )
    if args.text_pair:
        raise UserError("--zero-shot embeds single texts: drop --text-pair.")
    if not args.labels:
        raise UserError("--zero-shot needs the labels: --labels World,Sports,Business or NAME=DESCRIPTION items.")
    names, descriptions = parse_labels(args.labels)
    templates = args.template or None
    if templates:
        from tunesmith.fewshot.zero_shot import check_template

        for template in templates:
            check_template(template)
    if args.text:
        texts = args.text
        check_texts(texts, lambda index: f"--text number {index + 1} ({brief(texts[index])})")
        rows = [{"text": text} for text in texts]
        output = check_output_file(args.output, Path(os.devnull), {})
    else:
        source = Path(args.input)
        check_exists(source)
        output = check_output_file(args.output, Path(os.devnull), {"--input": source})
        data_config = DataConfig(train=source, format=args.format or "auto")
        read = read_texts(source, data_config, False, args.text_column or "text")
        texts, rows = read.texts, read.rows
    silence_libraries(uses_datasets=False)
    from tunesmith.fewshot.predictor import zero_shot_predictor

    predictor = zero_shot_predictor(args.model or "minilm", names, descriptions, templates)
    show_predictions(output, rows, texts, predictor.predict(texts), one_per_line=bool(args.text))


def run_fewshot(args: argparse.Namespace) -> None:
    from tunesmith.fewshot.repeat import parse_shots, sweep

    config_path, assignments = split_items(args.items)
    if config_path is None:
        raise UserError("fewshot needs a config file: tunesmith fewshot CONFIG --shots 8,64 --seeds 5")
    shots = parse_shots(args.shots)
    if args.seeds < 1:
        raise UserError(f"--seeds {args.seeds}: give at least 1.")
    silence_libraries()
    output = Path(args.output_dir) if args.output_dir else None
    seeds = list(range(args.seeds))
    folder, rows = sweep(config_path, assignments, shots, seeds, output, args.overwrite, args.zero_shot_baseline)
    print(f"\n{len(rows)} runs: {folder / 'fewshot.md'}\n")
    print((folder / "fewshot.md").read_text(), end="")


def run_select(args: argparse.Namespace) -> None:
    from tunesmith.data.readers import check_exists
    from tunesmith.data.splits import read_texts
    from tunesmith.runs import check_finished, run_config

    run_dir, pool = Path(args.run_dir), Path(args.pool)
    if args.k < 1:
        raise UserError(f"--k {args.k}: give how many texts to choose, at least 1.")
    check_finished(run_dir)
    config = run_config(run_dir)
    if TASKS[config.task].target != "class":
        raise UserError(
            f"select scores texts by a classifier's probabilities; {run_dir} is a {config.task} run. "
            "Use a classification run."
        )
    check_exists(pool)
    output = check_output_file(args.output, run_dir, {"--pool": pool})
    read = read_texts(pool, run_data_config(config, args.format), False, args.text_column)
    silence_libraries(uses_datasets=False)
    from tunesmith.fewshot.select import choose, pool_embeddings, probabilities_of
    from tunesmith.predictor import load

    predictor = load(run_dir)
    count, texts = len(read.texts), read.texts
    if args.by == "diversity":
        chosen, scores = choose("diversity", args.k, args.seed, count, embeddings=pool_embeddings(predictor, texts))
    elif args.by == "random":
        chosen, scores = choose("random", args.k, args.seed, count)
    else:
        chosen, scores = choose(args.by, args.k, args.seed, count, probabilities=probabilities_of(predictor, texts))
    rows = [read.rows[index] for index in chosen]
    results = [
        {"rank": rank, "pool_row": int(index) + 1, args.by: float(score)}
        for rank, (index, score) in enumerate(zip(chosen, scores, strict=True), start=1)
    ]
    text = format_predictions(rows, results, as_csv=bool(output) and output.suffix.lower() == ".csv")
    if output:
        write_output(output, text)
        print(f"Chose {len(rows)} of {len(read.texts)} texts by {args.by}: {output}")
    else:
        sys.stdout.write(text)
