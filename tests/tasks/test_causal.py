"""Task causal through the whole pipeline: train, score by generating, save, load, generate, audit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import tunesmith
from tests.causal.conftest import chat_rows, write_jsonl
from tunesmith.causal.generation import GenerationSettings
from tunesmith.cli import main
from tunesmith.errors import UserError

# Five facts to memorise: the run must learn each answer and to stop after it.
ANSWERS = [("cat", "red"), ("dog", "blue"), ("sun", "big"), ("tree", "far"), ("moon", "sat")]
FACTS = [{"prompt": f"the {word} is", "completion": f" {answer}"} for word, answer in ANSWERS]


def memorise(tiny_gpt2: str, tmp_path: Path, **overrides) -> tunesmith.Run:
    data = write_jsonl(tmp_path / "facts.jsonl", FACTS * 8)
    config = {
        "model": tiny_gpt2, "task": "causal", "output_dir": str(tmp_path / "run"),
        "data": {"train": str(data), "validation": str(write_jsonl(tmp_path / "val.jsonl", FACTS))},
        "causal": {"max_new_tokens": 6},
        "training": {"epochs": 60, "batch_size": 2, "learning_rate": 5e-3, "max_length": 32, "warmup_ratio": 0.0,
                     "eval_each_epoch": False},
    }  # fmt: skip
    for key, value in overrides.items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    return tunesmith.finetune(config)


@pytest.fixture(scope="module")
def memorised(tiny_gpt2: str, tmp_path_factory: pytest.TempPathFactory) -> tunesmith.Run:
    with pytest.MonkeyPatch.context() as patch:
        # What tests/conftest.py's `_offline_and_isolated` sets for each test, which this fixture starts before.
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("TRANSFORMERS_OFFLINE", "1")
        patch.setenv("TUNESMITH_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
        return memorise(tiny_gpt2, tmp_path_factory.mktemp("memorised"))


@pytest.mark.slow  # trains 240 steps (about 25 s on an idle core)
def test_a_run_learns_the_answers_and_to_stop_after_them(memorised: tunesmith.Run) -> None:
    run = memorised
    validation = run.metrics["validation"]
    # Exact match needs the answer and then EOS: a model that never stops would add words after it.
    assert validation["exact_match"] == 1.0 and validation["rouge_l"] == 1.0
    assert validation["perplexity"] < 1.5 and validation["generated_examples"] == 5
    assert validation["samples"][0]["generated"].strip() == validation["samples"][0]["reference"].strip()
    predictor = tunesmith.load(run.path)
    assert predictor.generate(["the dog is", "the moon is"]) == [" blue", " sat"]
    assert predictor.predict(["the sun is"]) == [{"generated_text": " big"}]
    cut = predictor.generate("the cat is", GenerationSettings(max_new_tokens=6, stop=["e"]))
    assert cut == [" r"]
    scored = predictor.evaluate(run.path.parent / "val.jsonl")
    assert scored["exact_match"] == 1.0 and scored["target_tokens"] == validation["target_tokens"]
    card = (run.path / "model" / "README.md").read_text()
    assert "text-generation" in card


@pytest.mark.slow  # the same run as above
def test_generate_on_the_command_line_writes_each_row_with_its_generation(
    memorised: tunesmith.Run, tmp_path: Path, capsys
) -> None:
    run = memorised
    prompts = write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": "the tree is", "id": 7}])
    assert main(["generate", str(run.path), "--input", str(prompts), "--output", str(tmp_path / "out.jsonl")]) == 0
    assert json.loads((tmp_path / "out.jsonl").read_text()) == {
        "prompt": "the tree is",
        "id": 7,
        "generated_text": " far",
    }
    assert main(["generate", str(run.path), "--prompt", "the cat is", "--sample", "--top-p", "1.5"]) == 2
    assert "top-p must be in (0, 1]" in capsys.readouterr().err
    assert main(["export", str(run.path), "--format", "onnx", "--output", str(tmp_path / "onnx")]) == 2
    assert "is a run of task causal, which export does not handle yet" in capsys.readouterr().err


def test_a_chat_run_under_lora_learns_every_assistant_turn(tiny_gpt2: str, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "chat.jsonl", chat_rows(40))
    run = tunesmith.finetune({
        "model": tiny_gpt2, "task": "causal", "strategy": "lora", "output_dir": str(tmp_path / "chat"),
        "causal": {"chat_template": "chatml", "evaluation_generations": 4},
        "data": {"train": str(data)}, "training": {"epochs": 2, "batch_size": 4, "max_length": 96},
    })  # fmt: skip
    assert (run.path / "adapter").is_dir()
    predictor = tunesmith.load(run.path)
    assert predictor.task.chat and len(predictor.generate(["say cat"], GenerationSettings(max_new_tokens=3))) == 1
    tokenizer = predictor.tokenizer
    assert "<|im_start|>" in tokenizer.chat_template and "<|im_end|>" in tokenizer.get_vocab()


def test_chats_need_a_template_and_encoders_are_refused(tiny_gpt2: str, tiny_model: str, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "chat.jsonl", chat_rows(10))
    config = {"model": tiny_gpt2, "task": "causal", "output_dir": str(tmp_path / "x"), "data": {"train": str(data)}}
    with pytest.raises(UserError, match="has no chat template. Name one with causal.chat_template"):
        tunesmith.finetune(config)
    with pytest.raises(UserError, match="is not a causal .* language model"):
        tunesmith.finetune({**config, "model": tiny_model})
    assert not (tmp_path / "x").exists()


def test_inspect_shows_the_learnt_tokens_and_the_eos(tiny_gpt2: str, tmp_path: Path, capsys) -> None:
    data = write_jsonl(tmp_path / "facts.jsonl", FACTS)
    config = tmp_path / "sft.yaml"
    config.write_text(
        f"model: {tiny_gpt2}\ntask: causal\ndata: {{train: {data}, validation_split: 0, test_split: 0}}\n"
    )
    assert main(["inspect", str(config), "--examples", "2"]) == 0
    shown = capsys.readouterr().out
    assert "the cat is⟦ red</s>⟧" in shown and "the dog is⟦ blue</s>⟧" in shown
    assert "chat template: none (plain text)" in shown


def test_a_chat_the_template_cannot_render_is_refused_by_its_line(tiny_gpt2: str, tmp_path: Path) -> None:
    # Llama-2-style templates insist that user and assistant turns alternate.
    strict = (
        "{% for m in messages %}{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}"
        "{{ raise_exception('Conversation roles must alternate user/assistant') }}{% endif %}"
        "{{ m['role'] + ': ' + m['content'] + '\\n' }}{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}"
    )
    model = tmp_path / "model"
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_gpt2)
    tokenizer.chat_template = strict
    tokenizer.save_pretrained(model)
    AutoModelForCausalLM.from_pretrained(tiny_gpt2).save_pretrained(model)
    good = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    bad = [
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "c"},
    ]
    data = write_jsonl(
        tmp_path / "chat.jsonl", [{"messages": good}] * 5 + [{"messages": bad}] + [{"messages": good}] * 4
    )
    config = {"model": str(model), "task": "causal", "output_dir": str(tmp_path / "run"),
              "data": {"train": str(data), "validation_split": 0, "test_split": 0}}  # fmt: skip
    with pytest.raises(UserError, match=r"chat.jsonl, line 6: The chat template cannot render .*must alternate"):
        tunesmith.finetune(config)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("strategy", ["prompt", "ptuning", "prefix"])
def test_virtual_token_strategies_are_refused_for_generation(strategy: str, tmp_path: Path) -> None:
    from tunesmith.config import validate_config

    with pytest.raises(UserError, match=f"strategy {strategy} cannot fine-tune task causal yet"):
        validate_config({"task": "causal", "strategy": strategy, "data": {"train": "x.jsonl"}}, "the config")


def test_qlora_is_refused_without_a_gpu_or_with_a_full_strategy(tiny_gpt2: str, tmp_path: Path, monkeypatch) -> None:
    from tunesmith.config import validate_config

    data = write_jsonl(tmp_path / "facts.jsonl", FACTS * 4)
    config = {"model": tiny_gpt2, "task": "causal", "strategy": "lora", "causal": {"load_in_4bit": True},
              "output_dir": str(tmp_path / "run"), "data": {"train": str(data)}}  # fmt: skip
    with pytest.raises(UserError, match="use it with task causal and strategy lora"):
        validate_config({**config, "strategy": "full"}, "the config")
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    with pytest.raises(UserError, match="needs a CUDA GPU"):
        tunesmith.finetune(config)
    assert not (tmp_path / "run").exists()


def test_the_data_doctor_points_a_causal_config_to_inspect(tiny_gpt2: str, tmp_path: Path, capsys) -> None:
    data = write_jsonl(tmp_path / "facts.jsonl", FACTS)
    config = tmp_path / "sft.yaml"
    config.write_text(f"model: {tiny_gpt2}\ntask: causal\ndata: {{train: {data}}}\n")
    assert main(["doctor", str(config)]) == 2
    assert "tunesmith inspect CONFIG" in capsys.readouterr().err
