"""`tunesmith search`: hyperparameter search with Optuna over a space given in the config.

Trial 0 is the config as given, so the table shows directly what the search gained
over it. Trials are seeded (TPE with training.seed) and run one after another in this
process; a trial whose validation score falls below the median of the earlier trials at
the same step is pruned (stopped) there. Each trial's run folder is
<search folder>/trial-N; the search writes trials.md, trials.json and best.yaml there.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import optuna
import yaml

from tunesmith.api import finetune
from tunesmith.config import (
    RunConfig,
    SearchRange,
    load_config,
    parse_assignment,
    read_yaml,
    set_dotted,
    validate_config,
)
from tunesmith.errors import UserError
from tunesmith.runs import RunFolder, check_output_folder, write_atomic
from tunesmith.tasks import get_task
from tunesmith.train.early_stopping import LOWER_IS_BETTER

# What a search writes beside its trials' run folders.
RESULTS = ("trials.json", "trials.md", "best.yaml")


def default_space(cfg: RunConfig) -> dict[str, SearchRange]:
    """Around the config's own values: the learning rate over a factor of 5 each way, and so on."""
    rate = cfg.training.learning_rate
    space = {
        "training.learning_rate": SearchRange(low=rate / 5, high=rate * 5, log=True),
        "training.batch_size": SearchRange(choices=sorted({16, 32, cfg.training.batch_size})),
        "training.warmup_ratio": SearchRange(low=0.0, high=0.2),
        "training.weight_decay": SearchRange(low=0.0, high=0.1),
    }
    if cfg.training.warmup_steps is not None:
        # The warm-up is given in steps; a sampled ratio beside it would be refused.
        del space["training.warmup_ratio"]
    if cfg.strategy == "lora":
        space["lora.rank"] = SearchRange(choices=sorted({4, 8, 16, cfg.lora.rank}))
    return space


def search(
    config_path: Path, assignments: list[str], trials: int, output_dir: Path | None
) -> tuple[Path, list[dict[str, Any]], dict[str, Any]]:
    """Run `trials` trials; returns the search folder, one row per trial, and the best config."""
    base = load_config(config_path, assignments=assignments)
    raw = read_yaml(config_path)
    for assignment in assignments:
        set_dotted(raw, *parse_assignment(assignment))
    space = base.search.space or default_space(base)
    metric = base.search.metric or base.training.metric_for_best or get_task(base).main_metric
    _check(base, space, metric, raw, config_path)
    folder = output_dir or Path("runs") / f"{base.run_name()}-search"
    check_output_folder(folder, RESULTS, _is_trial_folder, "search")
    # A search replaces the trials of an earlier one in its folder, but nothing else: a trial folder
    # it may not replace ends the search before the first trial trains, not after.
    for number in range(trials):
        RunFolder.check_replaceable(folder / f"trial-{number}", overwrite=True)
    direction = "minimize" if metric in LOWER_IS_BETTER else "maximize"
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2) if base.search.prune else optuna.pruners.NopPruner()
    optuna.logging.set_verbosity(logging.WARNING)
    study = optuna.create_study(
        direction=direction, sampler=optuna.samplers.TPESampler(seed=base.training.seed), pruner=pruner
    )
    study.enqueue_trial({key: _value_of(base, key) for key in space})

    def objective(trial: optuna.Trial) -> float:
        params = {key: _suggest(trial, key, choice) for key, choice in space.items()}
        config = _with(raw, params, name=f"{base.run_name()}-trial-{trial.number}")
        config["output_dir"] = str(folder / f"trial-{trial.number}")
        if trial.number and isinstance(config.get("report", {}), dict):
            # The baselines depend on the data alone: the first trial measures them, the others would repeat it.
            config["report"] = {**config.get("report", {}), "baselines": False}

        def report(record: dict[str, Any]) -> None:
            trial.report(record[metric], record["step"])
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at step {record['step']}")

        run = finetune(validate_config(config, str(config_path)), overwrite=True, on_evaluation=report)
        trial.set_user_attr("train_time_s", run.metrics["training"]["train_time_s"])
        return run.metrics["validation"][metric]

    study.optimize(objective, n_trials=trials, catch=())
    rows = [_row(trial, metric) for trial in study.trials]
    completed = [trial for trial in study.trials if trial.state == optuna.trial.TrialState.COMPLETE]
    if not completed:
        raise UserError(f"No trial of the search in {folder} finished; see trials.md there.")
    best = _with(raw, study.best_trial.params, name=base.run_name())
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / "trials.json", json.dumps(rows, indent=2) + "\n")
    write_atomic(folder / "trials.md", trials_table(rows, metric, study.best_trial.number))
    write_atomic(folder / "best.yaml", yaml.safe_dump(best, sort_keys=False))
    return folder, rows, best


def _check(base: RunConfig, space: dict[str, SearchRange], metric: str, raw: dict, source: Path) -> None:
    if base.data.validation is None and base.data.validation_split == 0:
        raise UserError("A search picks by validation score: give data.validation or a data.validation_split above 0.")
    if not base.training.evaluates:
        raise UserError("A search needs evaluations: set training.eval_each_epoch or training.eval_steps.")
    task = get_task(base)
    if metric not in task.metric_names:
        raise UserError(
            f'search.metric "{metric}" is not a {base.task} metric. Choose one of: {", ".join(task.metric_names)}.'
        )
    for key, choice in space.items():
        try:
            _value_of(base, key)
        except AttributeError:
            raise UserError(f'search.space key "{key}" is not a config key (e.g. training.learning_rate).') from None
        # Each end of the range (or each choice) must itself make a valid config.
        for value in choice.choices or [choice.low, choice.high]:
            validate_config(_with(raw, {key: value}, name=None), f"{source} with {key}={value!r}")


def _is_trial_folder(name: str) -> bool:
    return re.fullmatch(r"trial-[0-9]+", name) is not None


def _value_of(cfg: RunConfig, key: str) -> Any:
    node: Any = cfg
    for part in key.split("."):
        node = getattr(node, part)
    return node


def _suggest(trial: optuna.Trial, key: str, choice: SearchRange) -> Any:
    if choice.choices is not None:
        return trial.suggest_categorical(key, choice.choices)
    if choice.integer:
        return trial.suggest_int(key, int(choice.low), int(choice.high), log=choice.log)
    return trial.suggest_float(key, choice.low, choice.high, log=choice.log)


def _with(raw: dict[str, Any], params: dict[str, Any], name: str | None) -> dict[str, Any]:
    config = json.loads(json.dumps(raw, default=str))
    for key, value in params.items():
        set_dotted(config, key, value)
    config.pop("search", None)
    if name:
        config["name"] = name
    return config


def _row(trial: optuna.trial.FrozenTrial, metric: str) -> dict[str, Any]:
    return {
        "trial": trial.number,
        "state": trial.state.name.lower(),
        metric: trial.value,
        "params": trial.params,
        "train_time_s": trial.user_attrs.get("train_time_s"),
    }


def trials_table(rows: list[dict[str, Any]], metric: str, best: int) -> str:
    keys = list(rows[0]["params"]) if rows else []
    lines = [
        f"| trial | state | validation {metric} | " + " | ".join(keys) + " |",
        "|---" * (3 + len(keys)) + "|",
    ]
    for row in rows:
        value = "" if row[metric] is None else f"{row[metric]:.4f}"
        marks = " (given config)" if row["trial"] == 0 else ""
        marks += " **best**" if row["trial"] == best else ""
        cells = [_cell(row["params"].get(key)) for key in keys]
        lines.append(f"| {row['trial']}{marks} | {row['state']} | {value} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
