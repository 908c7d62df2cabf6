import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification, AutoTokenizer

import tunesmith
from tunesmith.config import validate_config
from tunesmith.errors import UserError
from tunesmith.strategies import get_strategy
from tunesmith.tasks import get_task
from tunesmith.train.activation_checkpointing import checkpoint_activations

TEXTS = ["the film was great one", "our trip was awful experience", "honestly a lovely one", "what a dreadful one"]


def probabilities(results: list[dict]) -> list[float]:
    return [row["probabilities"][name] for row in results for name in ("neg", "pos")]


@pytest.mark.parametrize("options", [{}, {"use_dora": True}, {"bias": "all"}], ids=["lora", "dora", "lora-with-biases"])
def test_lora_saves_adapter_with_its_head_and_a_merged_model_that_plain_transformers_loads(
    tiny_config: dict, options: dict
) -> None:
    run = tunesmith.finetune({**tiny_config, "strategy": "lora", "lora": options})
    counts = run.metrics["training"]
    assert counts["trainable_parameters"] / counts["total_parameters"] < 0.1
    adapter = run.path / "adapter"
    written = json.loads((adapter / "adapter_config.json").read_text())
    dora, bias = options.get("use_dora", False), options.get("bias", "none")
    assert written["peft_type"] == "LORA" and written["use_dora"] == dora and written["bias"] == bias
    saved = load_file(str(adapter / "adapter_model.safetensors"))
    # The classic bug: an adapter saved without its head reloads under a random classifier.
    assert any("classifier" in key for key in saved) and any("lora_A" in key for key in saved)
    assert any("lora_magnitude_vector" in key for key in saved) == dora
    # Trained biases travel in the adapter, since the backbone it is loaded onto has the old ones.
    assert any("intermediate.dense" in key and key.endswith("bias") for key in saved) == (bias == "all")

    ours = tunesmith.load(run.path).predict(TEXTS)
    model = AutoModelForSequenceClassification.from_pretrained(run.path / "model").eval()
    tokenizer = AutoTokenizer.from_pretrained(run.path / "model")
    with torch.no_grad():
        theirs = torch.softmax(model(**tokenizer(TEXTS, padding=True, return_tensors="pt")).logits, -1)
    assert probabilities(ours) == pytest.approx(theirs.flatten().tolist(), abs=1e-5)

    # Without model/, the run reloads from adapter/ on top of the backbone and predicts the same.
    shutil.rmtree(run.path / "model")
    from_adapter = tunesmith.load(run.path).predict(TEXTS)
    assert probabilities(from_adapter) == pytest.approx(theirs.flatten().tolist(), abs=1e-5)


@pytest.mark.parametrize("strategy", ["prompt", "ptuning", "ia3", "adalora"])
def test_each_peft_method_trains_only_a_few_parameters_and_reloads_to_the_same_scores(
    tiny_config: dict, strategy: str
) -> None:
    run = tunesmith.finetune({**tiny_config, "strategy": strategy})
    counts = run.metrics["training"]
    assert 0 < counts["trainable_parameters"] < 0.2 * counts["total_parameters"]
    mergeable = strategy in {"ia3", "adalora"}
    assert (run.path / "model").is_dir() == mergeable
    assert (run.path / "adapter" / "adapter_config.json").is_file()
    reloaded = tunesmith.load(run.path).evaluate(tiny_config["data"]["train"])
    again = tunesmith.load(run.path).evaluate(tiny_config["data"]["train"])
    assert reloaded["accuracy"] == again["accuracy"] and reloaded["loss"] == pytest.approx(again["loss"])


def test_prefix_tuning_is_refused_before_the_run_folder_where_peft_cannot_feed_the_model(tiny_config: dict) -> None:
    # peft's prefix tuning hands its prefixes over as past_key_values; BERT-style encoders in
    # transformers 5 take a `cache` instead, and peft would raise "Model does not support past key values".
    with pytest.raises(UserError, match=r"prefix needs a model whose forward takes past_key_values.*Use prompt"):
        tunesmith.finetune({**tiny_config, "strategy": "prefix"})
    assert not Path(tiny_config["output_dir"]).exists()


def test_peft_evaluation_from_the_folder_matches_the_run(tiny_config: dict) -> None:
    tiny_config["data"]["test"] = tiny_config["data"]["train"]
    run = tunesmith.finetune({**tiny_config, "strategy": "prompt"})
    scored = tunesmith.load(run.path).evaluate(tiny_config["data"]["train"])
    assert scored["accuracy"] == run.metrics["test"]["accuracy"]
    assert scored["loss"] == pytest.approx(run.metrics["test"]["loss"], abs=1e-5)


def test_lora_with_gradient_checkpointing_computes_the_same_loss_and_gradients(tiny_model: str, tiny_config) -> None:
    cfg = validate_config({**tiny_config, "strategy": "lora"}, "test")
    batch = AutoTokenizer.from_pretrained(tiny_model)(TEXTS, padding=True, return_tensors="pt")
    results = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=2)
        if checkpointing:
            checkpoint_activations(model)
        model = get_strategy(cfg, get_task(cfg)).prepare(model, 10)
        model.train()
        # Make LoRA's B non-zero so that gradients reach A as well.
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if "lora_B" in name:
                    parameter.fill_(0.01)
        loss = torch.nn.functional.cross_entropy(model(**batch).logits, torch.tensor([1, 0, 1, 0]))
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
        results.append((loss.item(), grads))
    (loss_plain, plain), (loss_checkpointed, checkpointed) = results
    assert loss_checkpointed == pytest.approx(loss_plain, rel=1e-6)
    assert plain.keys() == checkpointed.keys() and any("lora_A" in n for n in plain)
    for name in plain:
        assert torch.allclose(plain[name], checkpointed[name], atol=1e-6), name


def test_ner_trains_with_lora_and_refuses_prompt_tuning(tiny_model: str, tmp_path) -> None:
    from tests.conftest import ner_sentences, write_conll

    train = write_conll(tmp_path / "train.conll", ner_sentences(40))
    config = {
        "model": tiny_model,
        "task": "ner",
        "output_dir": str(tmp_path / "ner"),
        "data": {"train": str(train)},
        "training": {"epochs": 1, "batch_size": 8},
    }
    run = tunesmith.finetune({**config, "strategy": "lora"})
    assert (run.path / "adapter").is_dir() and "f1" in run.metrics["test"]
    assert tunesmith.load(run.path).predict(["Alice went to Paris"])[0].keys() == {"entities"}
    with pytest.raises(UserError, match="For token classification use lora"):
        tunesmith.finetune({**config, "strategy": "prompt", "output_dir": str(tmp_path / "ner2")})


def test_lora_trains_the_word_case_token_types_and_saves_them_with_the_adapter(tiny_model: str, tmp_path) -> None:
    from tests.conftest import ner_sentences, write_conll

    train = write_conll(tmp_path / "train.conll", ner_sentences(40))
    run = tunesmith.finetune(
        {
            "model": tiny_model,
            "task": "ner",
            "strategy": "lora",
            "ner": {"word_case": True},
            "output_dir": str(tmp_path / "ner"),
            "data": {"train": str(train)},
            "training": {"epochs": 2, "batch_size": 8, "learning_rate": 1e-3},
        }
    )
    saved = load_file(str(run.path / "adapter" / "adapter_model.safetensors"))
    assert any("token_type_embeddings" in key for key in saved)
    merged = load_file(str(run.path / "model" / "model.safetensors"))
    types = next(value for key, value in merged.items() if key.endswith("token_type_embeddings.weight"))
    # The rows start as copies of type 0; Capitalised words (type 1) are in every sentence.
    assert types.shape[0] == 4 and not torch.allclose(types[1], types[0])

    from_model = tunesmith.load(run.path).evaluate(str(train))
    shutil.rmtree(run.path / "model")
    from_adapter = tunesmith.load(run.path).evaluate(str(train))
    assert from_adapter["f1"] == from_model["f1"]
    assert from_adapter["loss"] == pytest.approx(from_model["loss"], abs=1e-5)
