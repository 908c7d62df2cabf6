"""The `tunesmith` command: train, evaluate, predict, compare, search, export, serve, demo.

Bad input ends in one paragraph on stderr and exit code 2; a traceback is shown only
with --debug, because a traceback for a typo in a column name helps nobody.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from tunesmith.causal import cli as causal_commands
from tunesmith.commands import (
    check_output_file,
    run_data_config,
    show_predictions,
    silence_libraries,
    split_items,
    write_output,
)
from tunesmith.config import FORMATS, STRATEGIES, RunConfig
from tunesmith.errors import UserError, brief
from tunesmith.fewshot import cli as fewshot_commands
from tunesmith.pretrain import cli as pretrain_commands
from tunesmith.tasks import TASK_NAMES, TASKS, reading_options
from tunesmith.train.signals import StopRequested

EXAMPLES = """examples:
  tunesmith train --data train.csv --text-column text --label-column label
  tunesmith train configs/sst2.yaml training.epochs=1 training.learning_rate=3e-5
  tunesmith evaluate runs/sst2-train --data dev.tsv
  tunesmith predict runs/sst2-train --text "a gorgeous, witty film"
  tunesmith train configs/sst2.yaml --strategy lora
  tunesmith compare configs/sst2.yaml --strategies full,bitfit,lora
  tunesmith search configs/sst2.yaml --trials 8
  tunesmith doctor configs/sst2.yaml
  tunesmith runs --sort validation
  tunesmith export runs/sst2-train --format onnx --quantize int8
  tunesmith serve runs/sst2-train-onnx-int8 --port 8000
  tunesmith predict --zero-shot --labels World,Sports,Business,Sci/Tech --text "Stocks fell sharply"
  tunesmith fewshot configs/agnews-fewshot.yaml --shots 8,64 --seeds 5
  tunesmith select runs/agnews-8shot --pool unlabelled.csv --k 50 --by entropy --output next.csv
"""

# Flags of `train` and the config keys they set.
TRAIN_FLAGS = {
    "data": "data.train",
    "validation": "data.validation",
    "test": "data.test",
    "text_column": "data.text_column",
    "text_pair_column": "data.text_pair_column",
    "label_column": "data.label_column",
    "format": "data.format",
    "max_train_rows": "data.max_train_rows",
    "model": "model",
    "task": "task",
    "strategy": "strategy",
    "name": "name",
    "output_dir": "output_dir",
    "epochs": "training.epochs",
    "batch_size": "training.batch_size",
    "learning_rate": "training.learning_rate",
    "max_length": "training.max_length",
    "seed": "training.seed",
}


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: otherwise the command's own default (False) overwrites a --debug given before it.
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show the full traceback on errors"
    )
    parser = argparse.ArgumentParser(
        prog="tunesmith",
        description="Fine-tune pretrained language models, offline by default.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"tunesmith {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser(
        "train",
        parents=[common],
        help="fine-tune a model and write a run folder",
        description="Fine-tune a model from a YAML config, flags, or both (flags win, then key=value). "
        "Relative paths start from the current folder.",
        epilog="example: tunesmith train --data train.csv --validation dev.csv --epochs 2",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument(
        "items",
        nargs="*",
        metavar="CONFIG|KEY=VALUE",
        help="a YAML config file and/or overrides such as training.epochs=2",
    )
    data = train.add_argument_group("data")
    data.add_argument("--data", metavar="FILE", help="training file (CSV, TSV, JSONL, Parquet, or save_to_disk folder)")
    data.add_argument("--validation", metavar="FILE", help="validation file (default: 10%% of train, stratified)")
    data.add_argument("--test", metavar="FILE", help="test file (default: 10%% of train, stratified)")
    data.add_argument("--text-column", metavar="NAME", help='column holding the text (default "text")')
    data.add_argument("--text-pair-column", metavar="NAME", help="column holding a second text, for sentence pairs")
    data.add_argument("--label-column", metavar="NAME", help='column holding the label (default "label")')
    data.add_argument(
        "--format",
        choices=FORMATS,
        help="file format (default: from the extension)",
    )
    data.add_argument("--max-train-rows", type=int, metavar="N", help="train on a seeded random subset of N rows")
    run = train.add_argument_group("model and run")
    run.add_argument(
        "--task",
        choices=TASK_NAMES,
        help="what to predict (default classification; sentence pairs: classification with --text-pair-column)",
    )
    run.add_argument(
        "--model",
        metavar="NAME_OR_PATH",
        help='"minilm" (bundled, default), a local model folder, or a Hugging Face id',
    )
    run.add_argument(
        "--strategy",
        choices=list(STRATEGIES),
        help="which parameters train (default full; see docs/strategies.md)",
    )
    run.add_argument("--name", help="run name (default: from the config or data file name)")
    run.add_argument("--output-dir", metavar="DIR", help="run folder (default: runs/<name>)")
    run.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue an unfinished run from its latest checkpoint (automatic when one is there; "
        "with --resume, its absence is an error)",
    )
    hyper = train.add_argument_group("training")
    hyper.add_argument("--epochs", type=int, metavar="N")
    hyper.add_argument("--batch-size", type=int, metavar="N")
    hyper.add_argument("--learning-rate", type=float, metavar="LR")
    hyper.add_argument("--max-length", type=int, metavar="TOKENS")
    hyper.add_argument("--seed", type=int)
    train.set_defaults(handler=run_train)

    evaluate = commands.add_parser(
        "evaluate",
        parents=[common],
        help="score a finished run on a labelled file",
        description="Score a finished run on a labelled file read with the run's column settings.",
    )
    evaluate.add_argument("run_dir", metavar="RUN_DIR")
    evaluate.add_argument("--data", required=True, metavar="FILE", help="labelled file to score")
    evaluate.add_argument("--format", choices=FORMATS, help="format of --data (default: from the extension)")
    evaluate.add_argument("--output", metavar="FILE", help="also write the metrics as JSON here")
    evaluate.set_defaults(handler=run_evaluate)

    predict = commands.add_parser(
        "predict",
        parents=[common],
        help="predict labels for texts",
        description="Predict labels and probabilities with a finished run.",
    )
    predict.add_argument("run_dir", nargs="?", metavar="RUN_DIR", help="a finished run (none with --zero-shot)")
    source = predict.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", action="append", metavar="TEXT", help="a text to predict for (repeatable)")
    source.add_argument("--input", metavar="FILE", help="a file of texts (same formats as training data)")
    predict.add_argument(
        "--text-pair", action="append", metavar="TEXT", help="the second text of each --text, for sentence-pair runs"
    )
    predict.add_argument("--text-column", metavar="NAME", help="text column of --input (default: the run's)")
    predict.add_argument("--format", choices=FORMATS, help="format of --input (default: from the extension)")
    predict.add_argument("--output", metavar="FILE", help="write predictions here (.csv, else JSON lines)")
    zero = predict.add_argument_group("zero-shot (no run: the label prompts' embeddings, docs/little-data.md)")
    zero.add_argument("--zero-shot", action="store_true", help="classify by similarity to the labels; no RUN_DIR")
    zero.add_argument(
        "--labels", metavar="A,B,...", help="comma-separated labels, each NAME or NAME=DESCRIPTION (the prompt's words)"
    )
    zero.add_argument(
        "--template",
        action="append",
        metavar="TEXT",
        help='prompt with {label} (repeatable; "This text is about {label}.")',
    )
    zero.add_argument("--model", metavar="NAME_OR_PATH", help='the sentence encoder (default "minilm", bundled)')
    predict.set_defaults(handler=run_predict)

    compare = commands.add_parser(
        "compare",
        parents=[common],
        help="train one config under several strategies and tabulate them",
        description="Train the same config under each strategy, each in its own process, and print and save a "
        "table (compare.md, compare.json): task metric, trainable parameters, train time, samples/s, peak "
        "memory. Strategies whose run already finished in the folder are read back, not retrained.",
        epilog="example: tunesmith compare configs/sst2.yaml --strategies full,bitfit,lora data.max_train_rows=4000",
    )
    compare.add_argument("items", nargs="+", metavar="CONFIG|KEY=VALUE", help="a YAML config and/or overrides")
    compare.add_argument(
        "--strategies",
        default="full,freeze,lora",
        metavar="A,B,...",
        help=f"comma-separated, from: {', '.join(STRATEGIES)} (default full,freeze,lora)",
    )
    compare.add_argument("--output-dir", metavar="DIR", help="where runs and table go (default runs/<name>-compare)")
    compare.add_argument("--overwrite", action="store_true", help="retrain strategies whose run already finished")
    compare.set_defaults(handler=run_compare)

    search = commands.add_parser(
        "search",
        parents=[common],
        help="search hyperparameters with Optuna",
        description="Train N trials with hyperparameters drawn by Optuna (TPE, seeded) from the config's "
        "search.space (default: learning rate, batch size, warm-up, weight decay, and the LoRA rank under "
        "LoRA). Trial 0 is the config as given; hopeless trials are pruned at an evaluation. Writes "
        "trials.md, trials.json and best.yaml.",
        epilog="example: tunesmith search configs/sst2.yaml --trials 8 data.max_train_rows=2000",
    )
    search.add_argument("items", nargs="+", metavar="CONFIG|KEY=VALUE", help="a YAML config and/or overrides")
    search.add_argument("--trials", type=int, default=8, metavar="N", help="how many trials (default 8)")
    search.add_argument("--output-dir", metavar="DIR", help="where trials go (default runs/<name>-search)")
    search.set_defaults(handler=run_search)

    doctor = commands.add_parser(
        "doctor",
        parents=[common],
        help="examine a config's data before training",
        description="Read the data as `train` would and look for what spoils a run: duplicates, the same text "
        "with different labels, overlap between splits (exact and after normalisation), short texts, label "
        "balance and labels unseen in train, token lengths and the share cut at max_length, invalid NER tags, "
        "pairs repeated with the sides swapped, and (classification) likely label errors. Prints a table and "
        "writes doctor.json and doctor.md. `train` runs the same checks first (docs/doctor.md).",
        epilog="example: tunesmith doctor configs/sst2.yaml doctor.label_error_rows=2000",
    )
    doctor.add_argument("items", nargs="*", metavar="CONFIG|KEY=VALUE", help="a YAML config and/or overrides")
    doctor.add_argument("--data", metavar="FILE", help="training file (instead of, or over, the config's)")
    doctor.add_argument("--validation", metavar="FILE", help="validation file")
    doctor.add_argument("--test", metavar="FILE", help="test file")
    doctor.add_argument("--text-column", metavar="NAME", help='column holding the text (default "text")')
    doctor.add_argument("--text-pair-column", metavar="NAME", help="column holding a second text")
    doctor.add_argument("--label-column", metavar="NAME", help='column holding the label (default "label")')
    doctor.add_argument("--format", choices=FORMATS, help="file format (default: from the extension)")
    doctor.add_argument("--task", choices=TASK_NAMES, help="what the labels are (default classification)")
    doctor.add_argument("--model", metavar="NAME_OR_PATH", help="the model whose tokenizer and embeddings to use")
    doctor.add_argument(
        "--no-label-errors",
        action="store_true",
        help="skip the search for likely label errors (it embeds up to doctor.label_error_rows training texts)",
    )
    doctor.add_argument("--output-dir", metavar="DIR", help="where doctor.json and doctor.md go (runs/<name>-doctor)")
    doctor.add_argument("--json", action="store_true", help="print doctor.json instead of the table")
    doctor.set_defaults(handler=run_doctor)

    report = commands.add_parser(
        "report",
        parents=[common],
        help="rebuild a finished run's report.md and its figures",
        description="Rebuild report.md and its PNG figures (confusion matrix, F1 per class, learning curves, "
        "reliability diagram, predicted against gold) from the run folder's metrics.json, labels.json, "
        "history.jsonl, predictions.jsonl and config.yaml.",
    )
    report.add_argument("run_dir", metavar="RUN_DIR")
    report.add_argument(
        "--format",
        choices=("md", "html", "both"),
        help="report.md, report.html (one self-contained page, figures inlined) or both; default: the run's "
        "report.format (md)",
    )
    report.set_defaults(handler=run_report)

    explain = commands.add_parser(
        "explain",
        parents=[common],
        help="show which words pushed a finished run's prediction for a text",
        description="Integrated gradients (captum) on the word embeddings: each word's share in the probability "
        "of the predicted class (or --target), or in the predicted value for regression; NER: in each predicted "
        "entity's tags.",
        epilog='example: tunesmith explain runs/sst2 --text "a gorgeous, witty film" --html why.html',
    )
    explain.add_argument("run_dir", metavar="RUN_DIR")
    explain.add_argument("--text", required=True, metavar="TEXT", help="the text to explain")
    explain.add_argument("--text-pair", metavar="TEXT", help="its second text, for sentence-pair runs")
    explain.add_argument(
        "--target",
        metavar="LABEL",
        help="the label to explain (default: the predicted one); NER: only the entities of this type",
    )
    explain.add_argument("--steps", type=int, default=50, help="integration steps (default 50)")
    explain.add_argument("--html", metavar="FILE", help="also write a page with the words coloured by attribution")
    explain.add_argument("--json", action="store_true", help="print the explanation as JSON")
    explain.set_defaults(handler=run_explain)

    runs = commands.add_parser(
        "runs",
        parents=[common],
        help="list the run folders with status, task, model, strategy, metrics and time",
        description="List the run folders under DIR (and one level deeper, for compare and search): status, "
        "task, model, strategy, the task's key metric on validation and test, training time, and when the "
        "status last changed.",
        epilog="example: tunesmith runs runs/ --sort validation",
    )
    runs.add_argument("folder", nargs="?", default="runs", metavar="DIR", help="folder of run folders (default runs)")
    runs.add_argument(
        "--sort",
        default="time",
        metavar="COLUMN",
        help="run, status, task, model, strategy, metric, validation, test, train_s or time (default time, newest "
        "first; scores and times sort highest first)",
    )
    runs.add_argument("--json", action="store_true", help="print the rows as JSON, every key metric included")
    runs.set_defaults(handler=run_runs)
    add_export_parser(commands, common)
    add_serve_parser(commands, common)

    demo = commands.add_parser(
        "demo",
        parents=[common],
        help="fine-tune the bundled model on the bundled demo data",
        description="Fine-tune the bundled MiniLM on 360 bundled customer-support messages (8 intents) "
        "and print test metrics. Replaces its own earlier run in runs/demo (or --output-dir), and refuses a "
        "folder that holds anything else.",
    )
    demo.add_argument("--output-dir", default="runs/demo", metavar="DIR")
    demo.set_defaults(handler=run_demo)
    pretrain_commands.register(commands, common)
    causal_commands.register(commands, common)
    fewshot_commands.register(commands, common)
    return parser


def add_export_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    export = commands.add_parser(
        "export",
        parents=[common],
        help="export a finished run: merged Hugging Face model, ONNX, int8",
        description="Export a finished run as one folder that predicts on its own: a merged Hugging Face model "
        "(--format hf) or ONNX with free batch and sequence axes (--format onnx, optionally --quantize int8), with "
        "the tokenizer, labels and task state. A parity gate re-scores validation examples with the run and the "
        "export and writes parity.json; beyond its limits the export fails (exit 1) and nothing is left. "
        "See docs/export.md.",
        epilog="example: tunesmith export runs/sst2-minilm --format onnx --quantize int8",
    )
    export.add_argument("run_dir", metavar="RUN_DIR")
    export.add_argument("--format", required=True, choices=("hf", "onnx"), help="hf (merged) or onnx")
    export.add_argument("--quantize", choices=("int8",), help="int8 dynamic quantisation (onnx only)")
    export.add_argument("--output", metavar="DIR", help="export folder (default: beside the run, RUN_DIR-FORMAT)")
    export.add_argument("--overwrite", action="store_true", help="replace an earlier export in --output")
    gate = export.add_argument_group("parity gate")
    gate.add_argument("--data", metavar="FILE", help="labelled file to check on (default: the run's validation split)")
    gate.add_argument("--parity-examples", type=int, default=1000, metavar="N", help="examples checked (default 1000)")
    gate.add_argument("--max-logit-diff", type=float, metavar="X", help="largest |Δlogit| allowed (fp32 default 1e-3)")
    gate.add_argument("--min-agreement", type=float, metavar="X", help="share of equal decisions (0.999; int8 0.97)")
    gate.add_argument("--max-metric-drop", type=float, metavar="X", help="task metric lost (0.001; int8 0.01)")
    export.set_defaults(handler=run_export)


def add_serve_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    serve = commands.add_parser(
        "serve",
        parents=[common],
        help="serve a run or an export over HTTP (REST)",
        description="Serve a finished run or an export with FastAPI and uvicorn: POST /predict, GET /health, /info, "
        "/metrics (Prometheus), /docs, and a page to try the model at /. Concurrent requests are batched. "
        "See docs/serve.md.",
        epilog="example: tunesmith serve runs/sst2-minilm-onnx-int8 --port 8000 --api-key-file key.txt",
    )
    serve.add_argument("path", metavar="RUN_OR_EXPORT")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--max-batch", type=int, default=32, metavar="N", help="texts per model call (default 32)")
    serve.add_argument(
        "--max-wait-ms", type=float, default=5.0, metavar="MS", help="wait for a batch to fill (default 5)"
    )
    serve.add_argument("--no-batching", action="store_true", help="run each request alone")
    serve.add_argument("--max-queue", type=int, default=1024, metavar="N", help="texts waiting before 503 (1024)")
    serve.add_argument("--max-texts", type=int, default=64, metavar="N", help="texts per request (default 64)")
    serve.add_argument("--max-chars", type=int, default=10000, metavar="N", help="characters per text (10000)")
    serve.add_argument(
        "--api-key-file", metavar="FILE", help="require this key (X-API-Key header); or TUNESMITH_API_KEY"
    )
    serve.add_argument("--threads", type=int, metavar="N", help="threads the model uses (default: all cores)")
    serve.set_defaults(handler=run_serve)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # Overrides may follow flags (`train cfg.yaml --overwrite training.epochs=2`), which argparse
    # alone rejects once positionals are interrupted; such leftovers are taken back as items.
    args, extra = parser.parse_known_args(argv)
    overrides = [item for item in extra if "=" in item and not item.startswith("-")]
    unknown = [item for item in extra if item not in overrides]
    if unknown or (overrides and args.command not in {"train", "compare", "search", "doctor", "pretrain", "fewshot"}):
        parser.error(f"unrecognized arguments: {' '.join(unknown or overrides)}")
    if overrides:
        args.items = [*args.items, *overrides]
    debug = getattr(args, "debug", False)
    _route_notices()
    try:
        args.handler(args)
    except UserError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        # 2 for bad input; 1 where the input was fine but the result failed a check (an export's parity gate).
        return exc.exit_code
    except StopRequested as stop:
        saved = f"; checkpoint {stop.checkpoint}. Run the same command again to resume" if stop.checkpoint else ""
        print(f"interrupted by {stop}{saved}.", file=sys.stderr)
        return stop.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            raise
        print(
            f"internal error: {type(exc).__name__}: {exc}\n"
            "This is a bug in tunesmith, not in your input; rerun with --debug for the traceback.",
            file=sys.stderr,
        )
        return 1
    return 0


def run_train(args: argparse.Namespace) -> None:
    from tunesmith.config import load_config

    config_path, assignments = split_items(args.items)
    flags = {TRAIN_FLAGS[key]: value for key, value in vars(args).items() if key in TRAIN_FLAGS and value is not None}
    if config_path is None and "data.train" not in flags:
        raise UserError("Nothing to train on: give a config file (tunesmith train CONFIG) or --data FILE.")
    cfg = load_config(config_path, flags, assignments)
    silence_libraries()  # seconds of torch and transformers: after the config is known good
    from tunesmith.api import finetune

    run = finetune(cfg, overwrite=args.overwrite, resume=args.resume)
    from accelerate import PartialState

    # Under torchrun / accelerate launch every process returns here; one summary is enough.
    if PartialState().is_main_process:
        _print_summary(run.path, run.metrics)


def run_compare(args: argparse.Namespace) -> None:
    silence_libraries()
    from tunesmith.compare import compare, parse_strategies

    config_path, assignments = split_items(args.items)
    if config_path is None:
        raise UserError("compare needs a config file: tunesmith compare CONFIG --strategies full,lora")
    strategies = parse_strategies(args.strategies)
    output = Path(args.output_dir) if args.output_dir else None
    folder, rows = compare(config_path, assignments, strategies, output, args.overwrite)
    print(f"\nCompared {len(rows)} strategies: {folder / 'compare.md'}\n")
    print((folder / "compare.md").read_text(), end="")


def run_search(args: argparse.Namespace) -> None:
    silence_libraries()
    from tunesmith.search import search

    config_path, assignments = split_items(args.items)
    if config_path is None:
        raise UserError("search needs a config file: tunesmith search CONFIG --trials 8")
    if args.trials < 1:
        raise UserError(f"--trials {args.trials}: give at least 1.")
    output = Path(args.output_dir) if args.output_dir else None
    folder, rows, _ = search(config_path, assignments, args.trials, output)
    print(f"\nSearched {len(rows)} trials: {folder / 'trials.md'}; best config: {folder / 'best.yaml'}\n")
    print((folder / "trials.md").read_text(), end="")


def run_doctor(args: argparse.Namespace) -> None:
    from tunesmith.config import load_config
    from tunesmith.data.doctor import command, render

    config_path, assignments = split_items(args.items)
    flags = {TRAIN_FLAGS[key]: value for key, value in vars(args).items() if key in TRAIN_FLAGS and value is not None}
    if config_path is None and "data.train" not in flags:
        raise UserError("Nothing to examine: give a config file (tunesmith doctor CONFIG) or --data FILE.")
    cfg = load_config(config_path, flags, assignments)
    output = Path(args.output_dir) if args.output_dir else Path("runs") / f"{cfg.run_name()}-doctor"
    command.check_folder(output)  # before the seconds of reading and tokenizing
    silence_libraries()
    report = command.diagnose(cfg, label_errors=not args.no_label_errors)
    command.write_report(output, report)
    print(render.to_json(report) if args.json else render.table(report), end="" if args.json else "\n")
    if not args.json:
        print(f"Written: {output / 'doctor.md'}, {output / 'doctor.json'}")


def run_report(args: argparse.Namespace) -> None:
    from tunesmith.runs import check_finished

    run_dir = Path(args.run_dir)
    check_finished(run_dir)
    from tunesmith.evaluate.rebuild import FILES, write_report
    from tunesmith.runs import run_config

    form = args.format or run_config(run_dir).report.format
    drawn = write_report(run_dir, form)
    print("Written: " + ", ".join(str(run_dir / name) for name in [*FILES[form], *drawn]))


def run_explain(args: argparse.Namespace) -> None:
    from tunesmith.data.splits import check_pairs, check_texts
    from tunesmith.runs import check_finished, run_config

    # Before the seconds of loading torch and the model:
    run_dir = Path(args.run_dir)
    check_finished(run_dir)
    pairs = [args.text_pair] if args.text_pair is not None else None
    check_pairs(run_config(run_dir).data, [args.text], pairs)
    check_texts([args.text], lambda index: f"--text ({brief(args.text)})")
    if pairs:
        check_texts(pairs, lambda index: f"--text-pair ({brief(args.text_pair)})")
    output = Path(args.html) if args.html else None
    if output is not None and output.is_dir():
        raise UserError(f"--html {output} is a folder. Give a file name, e.g. {output / 'explanation.html'}.")
    silence_libraries(uses_datasets=False)
    from tunesmith.evaluate.explain import explain, render_html, render_text
    from tunesmith.predictor import load

    explanation = explain(load(run_dir), args.text, args.text_pair, args.target, args.steps)
    if output is not None:
        write_output(output, render_html(explanation))
    print(json.dumps(explanation.as_dict(), indent=2, ensure_ascii=False) if args.json else render_text(explanation))
    if output is not None and not args.json:
        print(f"Written: {output}")


def run_runs(args: argparse.Namespace) -> None:
    from tunesmith.run_list import list_runs, table

    rows = list_runs(Path(args.folder), args.sort)
    print(json.dumps(rows, indent=2) if args.json else table(rows))


def run_demo(args: argparse.Namespace) -> None:
    output = Path(args.output_dir)
    _check_demo_folder(output)  # before the seconds of loading torch
    silence_libraries()
    from tunesmith.api import finetune

    data = resources.files("tunesmith.data") / "demo" / "support_tickets.csv"
    cfg = RunConfig.model_validate(
        {
            "name": "demo",
            "output_dir": str(output),
            "data": {"train": str(data), "label_column": "intent"},
            "training": {"epochs": 8, "batch_size": 16, "learning_rate": 1e-4},
        }
    )
    print(f"Fine-tuning the bundled MiniLM on {data.name} (360 support messages, 8 intents)...")
    run = finetune(cfg, overwrite=True)
    _print_summary(run.path, run.metrics)


def _check_demo_folder(folder: Path) -> None:
    """demo replaces its own earlier run without being asked, and no other: not a run of `train`'s."""
    import yaml

    from tunesmith.errors import brief
    from tunesmith.runs import run_marker

    # A new or empty folder is fine; one that is no run folder at all, RunFolder refuses with its listing.
    if not folder.is_dir() or not any(folder.iterdir()) or run_marker(folder) is None:
        return
    try:
        saved = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        saved = None
    name = saved.get("name") if isinstance(saved, dict) else None
    if name != "demo":
        raise UserError(
            f"Output folder {folder} holds a tunesmith run that `tunesmith demo` did not write (named {brief(name)}). "
            "demo replaces only its own earlier run: choose another --output-dir."
        )


def run_evaluate(args: argparse.Namespace) -> None:
    from tunesmith.data.readers import check_exists
    from tunesmith.runs import check_finished, run_config

    # Before the seconds of loading torch and the model:
    run_dir, data = Path(args.run_dir), Path(args.data)
    check_finished(run_dir)
    check_exists(data)
    output = check_output_file(args.output, run_dir, {"--data": data})
    from tunesmith.data.splits import read_labelled

    # Its columns and rows too. The predictor reads the file again: 0.6 s for SST-2's 67,349
    # training rows, against minutes of scoring them, and an error no longer waits for the model.
    config = run_config(run_dir)
    read_labelled(data, run_data_config(config, args.format), **reading_options(config))
    silence_libraries()
    from tunesmith.predictor import load

    metrics = load(args.run_dir).evaluate(Path(args.data), args.format)
    _print_table({"metrics": metrics})
    if output:
        write_output(output, json.dumps(metrics, indent=2) + "\n")


def run_predict(args: argparse.Namespace) -> None:
    from tunesmith.data.readers import check_exists
    from tunesmith.data.splits import check_pairs, check_texts, read_texts
    from tunesmith.runs import check_finished, run_config

    # Before the seconds of loading torch and the model:
    if args.text_pair and not args.text:
        raise UserError("--text-pair goes with --text (one --text-pair per --text); --input reads pairs itself.")
    if args.zero_shot or args.labels or args.template or args.model:
        from tunesmith.fewshot.cli import predict_zero_shot

        return predict_zero_shot(args)
    if args.run_dir is None:
        raise UserError(
            "predict needs a RUN_DIR (a finished run), or --zero-shot --labels A,B,... to classify by label prompts."
        )
    run_dir = Path(args.run_dir)
    check_finished(run_dir)
    config = run_config(run_dir)
    if args.text:
        texts, pairs = args.text, args.text_pair
        check_pairs(config.data, texts, pairs)
        check_texts(texts, lambda index: f"--text number {index + 1} ({brief(texts[index])})")
        if pairs:
            check_texts(pairs, lambda index: f"--text-pair number {index + 1} ({brief(pairs[index])})")
        rows = [{"text": text} for text in texts]
        for row, pair in zip(rows, pairs or [], strict=False):
            row["text_pair"] = pair
        output = check_output_file(args.output, run_dir, {})
    else:
        source = Path(args.input)
        check_exists(source)
        output = check_output_file(args.output, run_dir, {"--input": source})
        data_config = run_data_config(config, args.format)
        token_level = TASKS[config.task].token_level
        read = read_texts(source, data_config, token_level, args.text_column)
        texts, pairs, rows = read.texts, read.pairs, read.rows
    silence_libraries(uses_datasets=False)
    from tunesmith.predictor import load

    results = load(run_dir).predict(texts, pairs)
    show_predictions(output, rows, texts, results, one_per_line=bool(args.text))


def run_export(args: argparse.Namespace) -> None:
    from tunesmith.export import check_request
    from tunesmith.export.folder import check_output, default_output

    # Before the seconds of loading torch and the model:
    run_dir = Path(args.run_dir)
    check_request(run_dir, args.format, args.quantize, args.parity_examples)
    output = Path(args.output) if args.output else default_output(run_dir, args.format, args.quantize)
    check_output(output, args.overwrite)
    if args.data:
        from tunesmith.data.readers import check_exists

        check_exists(Path(args.data))
    silence_libraries()
    from tunesmith.export import export_run
    from tunesmith.export.parity import Gate

    gate = Gate.default(quantized=args.quantize is not None).with_overrides(
        max_logit_diff=args.max_logit_diff, min_agreement=args.min_agreement, max_metric_drop=args.max_metric_drop
    )
    data = Path(args.data) if args.data else None
    exported = export_run(run_dir, args.format, args.quantize, output, args.overwrite, gate, data, args.parity_examples)
    _print_parity(exported.path, exported.parity)


def _print_parity(path: Path, parity: dict[str, Any]) -> None:
    agreement = "n/a" if parity["agreement"] is None else f"{parity['agreement']:.4f}"
    print(f"Exported: {path}")
    print(
        f"parity on {parity['examples']} examples: max |Δlogit| {parity['max_abs_logit_diff']:.3g}, "
        f"agreement {agreement}, {parity['metric']} {parity['metric_before']:.4f} -> {parity['metric_after']:.4f}"
    )
    for name in ("pytorch", "export"):
        one, many = parity["timing"][name]["batch_1"], parity["timing"][name]["batch_32"]
        print(
            f"{name:<8} batch 1: p50 {one['p50_ms']:.1f} ms, p95 {one['p95_ms']:.1f} ms; "
            f"batch 32: {many['texts_per_s']:.1f} texts/s"
        )
    print(f"throughput at batch 32: {parity['throughput_ratio_batch_32']:.2f}x PyTorch's (figures in parity.json)")


def run_serve(args: argparse.Namespace) -> None:
    from tunesmith.serve.settings import settings_from_args

    settings = settings_from_args(args)  # before loading the model: a taken port or a missing key file fails at once
    silence_libraries(uses_datasets=False)
    from tunesmith.serve import serve

    serve(Path(args.path), settings)


def _print_table(columns: dict[str, dict[str, Any]]) -> None:
    print(f"{'':<14}" + "".join(f"{name:>12}" for name in columns))
    from tunesmith.evaluate.report import HEADLINE

    for key in HEADLINE:
        if any(key in metrics for metrics in columns.values()):
            print(f"{key:<14}" + "".join(f"{metrics.get(key, float('nan')):>12.4f}" for metrics in columns.values()))


def _print_summary(path: Path, metrics: dict[str, Any]) -> None:
    training = metrics["training"]
    print(f"\nRun finished: {path}")
    _print_table({split: metrics[split] for split in ("validation", "test") if split in metrics})
    print(
        f"train: {training['steps']} steps, {training['epochs']} epochs, {training['train_time_s']:.1f} s, "
        f"{training['samples_per_s']:.1f} samples/s, peak memory {training['peak_memory_mb']:.0f} MB"
    )
    share = 100 * training["trainable_parameters"] / training["total_parameters"]
    print(f"trained {training['trainable_parameters']:,} of {training['total_parameters']:,} parameters ({share:.2f}%)")


class _ToStderr(logging.StreamHandler):
    """A handler that writes to sys.stderr as it is when a record comes, not as it was when the
    handler was made: a caller that swaps stderr (a test's capture, a notebook) and closes the
    old one would otherwise get "--- Logging error ---" on the next notice."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _route_notices() -> None:
    # tunesmith's own notices (resuming, skipped checkpoints) go to stderr as plain lines.
    notices = logging.getLogger("tunesmith")
    if not notices.handlers:
        handler = _ToStderr()
        handler.setFormatter(logging.Formatter("%(message)s"))
        notices.addHandler(handler)
        notices.setLevel(logging.INFO)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tunesmith")
    except PackageNotFoundError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
