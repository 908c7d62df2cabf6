"""Pretraining runs end to end on a tiny corpus and model: what they write, and what they refuse."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

from tests.conftest import write_sentiment_csv
from tunesmith.api import finetune
from tunesmith.cli import main
from tunesmith.recipes.pretrain import pretrain

TINY = {"hidden_size": 16, "num_layers": 2, "num_heads": 2, "intermediate_size": 32, "max_positions": 64}


def config(corpus: Path, tokenizer: Path, output: Path, **training) -> dict:
    return {
        "tokenizer": str(tokenizer),
        "output_dir": str(output),
        "architecture": TINY,
        "data": {"train": [str(corpus)]},
        "training": {"max_length": 32, "batch_size": 8, "max_steps": 6, "eval_steps": 3, "logging_steps": 1,
                     **training},
    }  # fmt: skip


def history(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]


def test_masked_lm_from_scratch_writes_a_bert_that_fine_tunes(corpus: Path, tokenizer_dir: Path, tmp_path: Path):
    run = pretrain(config(corpus, tokenizer_dir, tmp_path / "run"))
    validation = [r for r in history(run.path) if r.get("split") == "validation" and not r.get("final")]
    assert [r["step"] for r in validation] == [3, 6]
    assert validation[-1]["perplexity"] == pytest.approx(torch.tensor(validation[-1]["loss"]).exp().item())
    assert run.metrics["validation"]["predicted_tokens"] > 0 and run.metrics["training"]["tokens_per_s"] > 0
    assert (run.path / "pretraining_curve.png").stat().st_size > 10_000
    assert json.loads((run.path / "status.json").read_text())["status"] == "finished"
    assert not (run.path / "checkpoints").exists()
    model = AutoModelForMaskedLM.from_pretrained(run.path / "model")
    assert type(model).__name__ == "BertForMaskedLM" and model.config.hidden_size == 16
    # The pretrained folder is a model like any other: fine-tune it, with LoRA too.
    data = write_sentiment_csv(tmp_path / "reviews.csv", rows_per_label=10)
    for strategy in ("full", "lora"):
        settings = {"model": str(run.path / "model"), "strategy": strategy, "data": {"train": str(data)}}
        tuned = finetune({**settings, "output_dir": str(tmp_path / strategy), "training": {"epochs": 1}})
        assert "accuracy" in tuned.metrics["test"]


def test_validation_masks_are_the_same_at_every_evaluation(corpus: Path, tokenizer_dir: Path, tmp_path: Path):
    """The held-out loss of an unchanged model does not move: every evaluation scores the same masked tokens."""
    run = pretrain(config(corpus, tokenizer_dir, tmp_path / "run", learning_rate=1e-12, warmup_ratio=0.0))
    losses = [r["loss"] for r in history(run.path) if r.get("split") == "validation"]
    assert len(losses) == 3 and max(losses) - min(losses) < 1e-4


def test_a_pretraining_run_is_refused_where_a_fine_tuned_run_is_wanted(
    corpus: Path, tokenizer_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    run = pretrain(config(corpus, tokenizer_dir, tmp_path / "run", max_steps=2, eval_steps=2)).path
    capsys.readouterr()
    for args in (["export", "--format", "onnx"], ["export", "--format", "hf"], ["serve", "--port", "0"],
                 ["predict", "--text", "hello"], ["evaluate", "--data", str(corpus)]):  # fmt: skip
        assert main([args[0], str(run), *args[1:]]) == 2, args
        error = capsys.readouterr().err
        assert "is a pretraining run (objective mlm)" in error and f"--model {run / 'model'}" in error, args
    assert sorted(path.name for path in tmp_path.iterdir()) == ["run"]  # no export began


def test_causal_lm_from_scratch_writes_a_decoder_that_generates(corpus: Path, tmp_path: Path):
    from tunesmith.pretrain.tokenizer_training import train_tokenizer

    bpe = tmp_path / "bpe"
    train_tokenizer(corpus.read_text().splitlines(), vocab_size=300, kind="bpe").save_pretrained(bpe)
    for decoder in ("gpt2", "llama"):
        cfg = config(corpus, bpe, tmp_path / decoder)
        cfg.update(objective="causal", architecture={**TINY, "decoder": decoder})
        run = pretrain(cfg)
        assert run.metrics["validation"]["perplexity"] < 300  # below the vocabulary size: it learned something
        model = AutoModelForCausalLM.from_pretrained(run.path / "model")
        tokenizer = AutoTokenizer.from_pretrained(run.path / "model")
        generated = model.generate(**tokenizer("the cat", return_tensors="pt"), max_new_tokens=3, do_sample=False)
        assert generated.shape[1] > 2


def test_continued_pretraining_grows_the_vocabulary(tiny_model: str, tmp_path: Path):
    corpus = tmp_path / "zh.txt"
    corpus.write_text("\n".join(["银行贷款利率很高", "贷款的利率下降了", "银行今天开门"] * 40), encoding="utf-8")
    before = AutoTokenizer.from_pretrained(tiny_model)
    unknown = [c for c in "银行贷款利率" if before.convert_tokens_to_ids(c) == before.unk_token_id]
    assert unknown, "the test needs characters the tokenizer does not know"
    cfg = {"model": tiny_model, "output_dir": str(tmp_path / "run"), "vocabulary": {"add_tokens": 20},
           "data": {"train": [str(corpus)], "validation_split": 0.2},
           "training": {"max_length": 32, "batch_size": 8, "max_steps": 2}}  # fmt: skip
    run = pretrain(cfg)
    tokenizer = AutoTokenizer.from_pretrained(run.path / "model")
    model = AutoModelForMaskedLM.from_pretrained(run.path / "model")
    assert all(tokenizer.convert_tokens_to_ids(c) != tokenizer.unk_token_id for c in unknown)
    assert tokenizer.unk_token_id not in tokenizer("银行贷款")["input_ids"]
    assert model.config.vocab_size == len(tokenizer) > len(before)


@pytest.mark.slow
def test_time_budget_ends_on_time_with_the_schedule_run_down(corpus: Path, tokenizer_dir: Path, tmp_path: Path):
    cfg = config(corpus, tokenizer_dir, tmp_path / "run", max_steps=None, epochs=1000, max_time="4s",
                 eval_steps=10_000, warmup_ratio=0.1)  # fmt: skip
    started = time.perf_counter()
    run = pretrain(cfg)
    assert run.metrics["training"]["train_time_s"] < 4 + 2
    assert time.perf_counter() - started < 30
    steps = [r for r in history(run.path) if "split" not in r]
    assert steps[-1]["step"] == run.metrics["training"]["steps"] > 10
    # Fitted to the budget: the rate ran down (nearly) to zero by the last step, not cut off on the way.
    peak = max(r["learning_rate"] for r in steps)
    assert peak > 1e-4 and steps[-1]["learning_rate"] <= 0.05 * peak


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"data": {"train": ["EMPTY"]}}, "holds no text"),
        ({"training": {"max_length": 100}}, "architecture.max_positions"),
        ({"tokenizer": None}, "needs a tokenizer"),
        ({"mlm": {"rate": 1.5}}, "mlm.rate"),
        ({"vocabulary": {"add_tokens": 10}}, "extends a pretrained model"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(change, message, corpus, tokenizer_dir, tmp_path, capsys):
    import yaml

    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    cfg = config(corpus, tokenizer_dir, tmp_path / "run")
    for key, value in change.items():
        cfg[key] = {**cfg[key], **value} if isinstance(value, dict) and key in cfg else value
    if cfg["data"]["train"] == ["EMPTY"]:
        cfg["data"]["train"] = [str(empty)]
    path = tmp_path / "pretrain.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["pretrain", str(path)]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_tokenizer_without_a_mask_token_is_refused_for_masked_lm(corpus: Path, tmp_path: Path, capsys):
    from tunesmith.pretrain.tokenizer_training import train_tokenizer

    tokenizer = train_tokenizer(corpus.read_text().splitlines(), vocab_size=300, kind="bpe")
    tokenizer.mask_token = None
    tokenizer.save_pretrained(tmp_path / "bpe")
    assert main(["pretrain", "--data", str(corpus), "--tokenizer", str(tmp_path / "bpe"),
                 "--output-dir", str(tmp_path / "run")]) == 2  # fmt: skip
    assert "has no mask_token" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_tokenizer_train_command(corpus: Path, tmp_path: Path, capsys):
    assert main(["tokenizer", "train", "--files", str(corpus), "--vocab-size", "150", "--output-dir",
                 str(tmp_path / "tok")]) == 0  # fmt: skip
    assert AutoTokenizer.from_pretrained(tmp_path / "tok").mask_token == "[MASK]"
    assert main(["tokenizer", "train", "--files", str(corpus), "--vocab-size", "150", "--output-dir",
                 str(tmp_path / "tok")]) == 2  # fmt: skip
    assert "not an empty folder" in capsys.readouterr().err


@pytest.mark.slow
def test_interrupted_pretraining_resumes_exactly(corpus: Path, tokenizer_dir: Path, tmp_path: Path):
    import yaml

    cfg = config(corpus, tokenizer_dir, tmp_path / "unused", max_steps=40, eval_steps=10, save_steps=2)
    cfg["architecture"] = {**TINY, "dropout": 0.1}
    path = tmp_path / "pretrain.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}

    def command(output: Path) -> list[str]:
        return [sys.executable, "-m", "tunesmith", "pretrain", str(path), "--output-dir", str(output)]

    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    subprocess.run(command(reference), env=env, check=True, capture_output=True, timeout=300)
    process = subprocess.Popen(command(resumed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not list((resumed / "checkpoints").glob("step-*[0-9]")) and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=120) != 0
    assert json.loads((resumed / "status.json").read_text())["status"] == "interrupted"
    subprocess.run(command(resumed), env=env, check=True, capture_output=True, timeout=300)

    def numbers(run: Path) -> list[dict]:  # all but the speeds
        return [{k: v for k, v in r.items() if k != "samples_per_s"} for r in history(run)]

    assert numbers(resumed) == numbers(reference)
    assert sum("split" not in record for record in numbers(reference)) == 40  # every step is in the comparison
