import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

import tunesmith
from tunesmith.config import AdapterOptions
from tunesmith.errors import UserError
from tunesmith.strategies import adapter


def test_adapters_start_as_the_identity_and_sit_where_each_kind_puts_them(tiny_model: str) -> None:
    batch = AutoTokenizer.from_pretrained(tiny_model)(["a fine day", "rain"], padding=True, return_tensors="pt")
    base = AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=2).eval()
    with torch.no_grad():
        expected = base(**batch).logits
    houlsby = adapter.insert(base, AdapterOptions(kind="houlsby", reduction_factor=4))
    with torch.no_grad():
        assert torch.equal(houlsby(**batch).logits, expected)
    adapted = [name for name, module in houlsby.named_modules() if isinstance(module, adapter.Adapted)]
    assert adapted == [
        "bert.encoder.layer.0.attention.output.dense",
        "bert.encoder.layer.0.output.dense",
        "bert.encoder.layer.1.attention.output.dense",
        "bert.encoder.layer.1.output.dense",
    ]
    assert houlsby.bert.encoder.layer[0].output.dense.adapter.down.out_features == 32 // 4
    trained = {name for name, p in houlsby.named_parameters() if p.requires_grad}
    assert all(".adapter." in n or "LayerNorm" in n or "classifier" in n or "pooler" in n for n in trained)
    pfeiffer = adapter.insert(
        AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=2), AdapterOptions(kind="pfeiffer")
    )
    assert [n for n, m in pfeiffer.named_modules() if isinstance(m, adapter.Adapted)] == [
        "bert.encoder.layer.0.output.dense",
        "bert.encoder.layer.1.output.dense",
    ]


def test_targets_that_match_nothing_are_a_clear_error(tiny_model: str) -> None:
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=2)
    with pytest.raises(UserError, match="match no linear layer"):
        adapter.insert(model, AdapterOptions(target_modules=[r"\.nothing$"]))


def test_adapter_run_saves_only_adapter_and_reloads_to_the_same_scores(tiny_config: dict) -> None:
    tiny_config["data"]["test"] = tiny_config["data"]["train"]
    run = tunesmith.finetune({**tiny_config, "strategy": "adapter"})
    assert not (run.path / "model").exists()
    assert adapter.is_saved_in(run.path / "adapter")
    counts = run.metrics["training"]
    assert counts["trainable_parameters"] < 0.2 * counts["total_parameters"]
    scored = tunesmith.load(run.path).evaluate(tiny_config["data"]["train"])
    assert scored["accuracy"] == run.metrics["test"]["accuracy"]
    assert scored["loss"] == pytest.approx(run.metrics["test"]["loss"], abs=1e-5)
