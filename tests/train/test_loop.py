import io
import logging
import re
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from tqdm.auto import tqdm as real_tqdm

from tunesmith.config import RunConfig, TrainingConfig
from tunesmith.data.splits import load_splits
from tunesmith.models.backbones import load_tokenizer
from tunesmith.tasks.classification import ClassificationTask
from tunesmith.train import checkpoints, loop
from tunesmith.train.loop import fit
from tunesmith.train.signals import GracefulStop, StopRequested


def prepared(tiny_model: str, sentiment_csv: Path, training: TrainingConfig) -> tuple:
    tokenizer = load_tokenizer(tiny_model)
    cfg = RunConfig(
        data={"train": sentiment_csv, "test_split": 0.0, "validation_split": 0.25},
        training=training.model_copy(update={"max_length": 32}),
    )
    loaded = load_splits(cfg.data, seed=0)
    task = ClassificationTask(cfg)
    task.fit_labels(loaded.splits["train"], sentiment_csv)
    encoded = {
        name: task.tokenize(task.encode(split, sentiment_csv), tokenizer, name == "train")
        for name, split in loaded.splits.items()
    }
    return tokenizer, task, encoded


def train(
    tiny_model: str,
    sentiment_csv: Path,
    checkpoint_dir: Path | None = None,
    resume: checkpoints.Checkpoint | None = None,
    stop: GracefulStop | None = None,
    log: list[dict] | None = None,
    watch: Callable[[dict], None] | None = None,
    **overrides,
) -> tuple:
    # A random tiny BERT sits on a plateau for a few epochs before it learns, hence 12 epochs.
    cfg = TrainingConfig(
        **{"epochs": 12, "batch_size": 8, "learning_rate": 1e-3, "warmup_ratio": 0.0, "logging_steps": 2, **overrides}
    )
    tokenizer, task, encoded = prepared(tiny_model, sentiment_csv, cfg)
    set_seed(0)
    model = task.load_model(tiny_model)
    log = [] if log is None else log

    def record(entry: dict) -> None:
        log.append(entry)
        if watch is not None:
            watch(entry)

    accelerator = Accelerator(gradient_accumulation_steps=cfg.gradient_accumulation_steps)
    # A fresh checkpoint folder per run: two runs in one test must not see each other's.
    checkpoint_dir = checkpoint_dir or Path(tempfile.mkdtemp(dir=sentiment_csv.parent))
    model, summary = fit(
        model,
        encoded["train"],
        encoded["validation"],
        tokenizer,
        task,
        cfg,
        accelerator,
        record,
        checkpoint_dir,
        resume=resume,
        stop=stop,
    )
    return model, summary, log


def test_training_learns_an_easy_task(tiny_model: str, sentiment_csv: Path) -> None:
    _, summary, log = train(tiny_model, sentiment_csv)
    losses = [r["loss"] for r in log if "split" not in r]
    evaluations = [r for r in log if r.get("split") == "validation"]
    assert len(evaluations) == 12 and summary.steps == 12 * 8
    assert losses[0] > 0.65 and losses[-1] < 0.4  # from chance (ln 2) to well below it
    assert evaluations[-1]["accuracy"] >= 0.9
    assert summary.train_samples == 12 * 60 and summary.samples_per_s > 0


def test_max_steps_caps_training(tiny_model: str, sentiment_csv: Path) -> None:
    _, summary, _ = train(tiny_model, sentiment_csv, max_steps=5, eval_each_epoch=False)
    assert summary.steps == 5 and summary.best_step is None


def test_eval_every_n_steps_and_or_each_epoch(tiny_model: str, sentiment_csv: Path) -> None:
    _, _, log = train(tiny_model, sentiment_csv, eval_each_epoch=False, eval_steps=6, epochs=2)
    assert [r["step"] for r in log if r.get("split") == "validation"] == [6, 12]
    # Both: every 6 steps and at each epoch end (8, 16), once only where they coincide.
    _, _, log = train(tiny_model, sentiment_csv, eval_steps=6, epochs=3)
    assert [r["step"] for r in log if r.get("split") == "validation"] == [6, 8, 12, 16, 18, 24]


def test_early_stopping_stops_and_restores_the_best_model(
    tiny_model: str, sentiment_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripted = iter([0.5, 0.8, 0.7, 0.6, 0.95])
    snapshots = []

    def scripted_evaluate(model, loader, accelerator, task):
        snapshots.append({k: v.clone() for k, v in accelerator.unwrap_model(model).state_dict().items()})
        return {"accuracy": next(scripted), "loss": 1.0}

    monkeypatch.setattr(loop, "evaluate", scripted_evaluate)
    model, summary, log = train(tiny_model, sentiment_csv, early_stopping_patience=2)
    steps = [r["step"] for r in log if r.get("split") == "validation"]
    assert steps == [8, 16, 24, 32]  # 0.7 and 0.6 do not beat 0.8: stop after two evaluations
    assert summary.stopped_early and summary.best_step == 16 and summary.best_metric == 0.8
    best = snapshots[1]
    assert all(torch.equal(value, best[key]) for key, value in model.state_dict().items())
    assert not torch.equal(snapshots[3]["classifier.weight"], best["classifier.weight"])


def test_gradient_accumulation_matches_a_larger_batch(tiny_model: str, sentiment_csv: Path) -> None:
    common = {"max_steps": 3, "eval_each_epoch": False, "group_by_length": False}
    big, _, _ = train(tiny_model, sentiment_csv, batch_size=8, **common)
    accumulated, _, _ = train(tiny_model, sentiment_csv, batch_size=4, gradient_accumulation_steps=2, **common)
    for (name, a), (_, b) in zip(big.named_parameters(), accumulated.named_parameters(), strict=True):
        assert torch.allclose(a, b, atol=2e-4), name


@pytest.mark.parametrize(("stop_at", "accumulation"), [(3, 1), (8, 1), (13, 1), (6, 2)])
def test_a_stopped_run_resumes_exactly_like_an_uninterrupted_one(
    tiny_dropout_model: str, sentiment_csv: Path, tmp_path: Path, stop_at: int, accumulation: int
) -> None:
    """Stopped mid-epoch, at an epoch end (8 steps each) and with accumulated gradients; dropout is on."""
    common = {"epochs": 3, "logging_steps": 1, "save_steps": 100, "gradient_accumulation_steps": accumulation}
    reference, reference_summary, reference_log = train(tiny_dropout_model, sentiment_csv, **common)

    stop = GracefulStop()
    log: list[dict] = []

    def signal_at_step(record: dict) -> None:
        if record["step"] == stop_at and "split" not in record:
            stop.signum = signal.SIGTERM  # what the handler records when `kill` arrives mid-step

    folder = tmp_path / "checkpoints"
    with pytest.raises(StopRequested) as stopped:
        train(tiny_dropout_model, sentiment_csv, folder, stop=stop, log=log, watch=signal_at_step, **common)
    assert stopped.value.checkpoint == folder / f"step-{stop_at}"

    resume, skipped = checkpoints.latest_usable(folder)
    assert resume is not None and resume.step == stop_at and not skipped
    resumed, summary, log = train(tiny_dropout_model, sentiment_csv, folder, resume=resume, log=log, **common)

    def comparable(records: list[dict]) -> list[dict]:
        return [{k: v for k, v in r.items() if k != "samples_per_s"} for r in records]

    assert comparable(log) == comparable(reference_log)  # every loss and metric, bit for bit
    for (name, a), (_, b) in zip(reference.state_dict().items(), resumed.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    assert (summary.steps, summary.train_samples, summary.best_step) == (
        reference_summary.steps,
        reference_summary.train_samples,
        reference_summary.best_step,
    )


class Terminal(io.StringIO):
    """Where a bar goes on an interactive terminal."""

    def isatty(self) -> bool:
        return True


def bars_to(stream: io.StringIO) -> Callable:
    return lambda *args, **kwargs: real_tqdm(*args, file=stream, **kwargs)


def test_without_a_terminal_progress_is_logged_as_plain_lines(
    tiny_model: str, sentiment_csv: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # CI, nohup, a log file: tqdm turns its bar off, and nothing at all was printed for a whole run.
    monkeypatch.setattr(loop, "tqdm", bars_to(io.StringIO()))
    options = {"max_steps": 4, "logging_steps": 2, "eval_steps": 4, "eval_each_epoch": False}
    with caplog.at_level(logging.INFO, logger="tunesmith.train.loop"):
        train(tiny_model, sentiment_csv, **options)
    lines = [record.getMessage() for record in caplog.records if record.name == "tunesmith.train.loop"]
    assert len(lines) == 3, lines
    number = r"\d+\.\d+"
    for line, step, done in zip(lines, (2, 4), ("50%", "100%"), strict=False):
        assert re.fullmatch(
            rf"step {step}/4 \({done}\), epoch {number}, loss {number}, lr \S+, {number} samples/s, "
            r"elapsed \d+:\d\d, ETA \d+:\d\d",
            line,
        ), line
    assert lines[1].endswith("ETA 0:00")
    assert lines[2].startswith("validation at step 4/4: accuracy ")

    # On a terminal the bar says it, and no line is logged.
    terminal = Terminal()
    monkeypatch.setattr(loop, "tqdm", bars_to(terminal))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="tunesmith.train.loop"):
        train(tiny_model, sentiment_csv, **options)
    assert not [record for record in caplog.records if record.name == "tunesmith.train.loop"]
    assert "Training: 100%" in terminal.getvalue() and "loss=" in terminal.getvalue()
