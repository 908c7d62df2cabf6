import logging
import sys

import pytest
import torch
from torch import nn
from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

from tests.speedups.test_first_token_layer import prefix_cache
from tunesmith.config import TrainingConfig
from tunesmith.speedups import apply_speedups, attention, dropout, first_token_layer, self_check, training_speedups
from tunesmith.speedups.dropout import SlicedMaskDropout

EVERY = ["first_token_layer", "sliced_mask_dropout", "sliced_mask_attention"]


def classifier(path: str, head=AutoModelForSequenceClassification) -> nn.Module:
    torch.manual_seed(0)
    return head.from_pretrained(path, num_labels=3)


def untouched(model: nn.Module) -> bool:
    """No patch is left on `model`."""
    layers = [m for m in model.modules() if type(m).__name__ == "BertLayer"]
    return (
        not any("forward" in vars(layer) for layer in layers)
        and not any(isinstance(m, SlicedMaskDropout) for m in model.modules())
        and all(m.config._attn_implementation == "sdpa" for m in model.modules() if hasattr(m, "config"))
    )


def outputs(model: nn.Module) -> torch.Tensor:
    return self_check.outputs(model, self_check.probe_inputs(model))


def test_on_the_cpu_every_patch_that_fits_applies_and_evaluation_is_unchanged(tiny_dropout_model: str) -> None:
    model, plain = classifier(tiny_dropout_model), classifier(tiny_dropout_model)
    model.train()
    torch.manual_seed(3)
    state = torch.get_rng_state()
    assert apply_speedups(model, TrainingConfig(), torch.device("cpu")) == EVERY
    assert torch.equal(torch.get_rng_state(), state)  # the checks drew nothing from the run's generator
    assert all(module.training for module in model.modules())  # the checks' evaluation mode is undone
    assert "forward" in vars(model.bert.encoder.layer[-1])
    assert any(isinstance(m, SlicedMaskDropout) for m in model.modules())
    assert model.config._attn_implementation == attention.NAME
    torch.testing.assert_close(outputs(model), outputs(plain), rtol=self_check.RTOL, atol=self_check.ATOL)


def test_prediction_gets_the_first_token_layer_only(tiny_dropout_model: str) -> None:
    model = classifier(tiny_dropout_model)
    assert apply_speedups(model, TrainingConfig(), "cpu", training=False) == ["first_token_layer"]


def test_a_token_classifier_gets_no_first_token_layer(tiny_dropout_model: str) -> None:
    model = classifier(tiny_dropout_model, AutoModelForTokenClassification)
    assert apply_speedups(model, TrainingConfig(), "cpu") == ["sliced_mask_dropout", "sliced_mask_attention"]


@pytest.mark.parametrize(
    ("device", "enabled", "said"),
    [("cuda", True, "for the CPU"), ("cuda:0", True, "for the CPU"), ("cpu", False, "cpu_speedups is off")],
)
def test_off_the_cpu_or_switched_off_nothing_applies_and_the_debug_log_says_why(
    tiny_dropout_model: str, caplog: pytest.LogCaptureFixture, device: str, enabled: bool, said: str
) -> None:
    model = classifier(tiny_dropout_model)
    caplog.set_level(logging.DEBUG, logger="tunesmith.speedups")
    assert apply_speedups(model, TrainingConfig(cpu_speedups=enabled), torch.device(device)) == []
    assert untouched(model)
    assert said in caplog.text


def test_outside_the_tested_transformers_releases_nothing_applies(
    tiny_dropout_model: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from accelerate import Accelerator

    from tunesmith import speedups

    monkeypatch.setattr(speedups.metadata, "version", lambda name: "6.1.0")
    model = classifier(tiny_dropout_model)
    caplog.set_level(logging.INFO, logger="tunesmith.speedups")
    assert apply_speedups(model, TrainingConfig(), "cpu") == []
    assert training_speedups(model, TrainingConfig(), Accelerator(cpu=True)).applied == []
    assert untouched(model) and not model.get_input_embeddings().sparse
    assert "transformers 6.1.0 is outside the releases they are tested on (>=5.0,<6)" in caplog.text
    monkeypatch.setattr(speedups.metadata, "version", lambda name: "5.25.0")
    assert speedups.transformers_untested() is None


def refused(caplog: pytest.LogCaptureFixture, name: str) -> bool:
    return any(
        record.levelno == logging.WARNING and f"CPU speedup {name} not applied" in record.getMessage()
        for record in caplog.records
    )


def test_a_wrong_first_token_layer_is_refused(
    tiny_dropout_model: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    right = first_token_layer._first_position_forward
    monkeypatch.setattr(first_token_layer, "_first_position_forward", lambda *a, **k: right(*a, **k) * 1.1)
    model, plain = classifier(tiny_dropout_model), classifier(tiny_dropout_model)
    assert apply_speedups(model, TrainingConfig(), "cpu") == EVERY[1:]
    assert "forward" not in vars(model.bert.encoder.layer[-1])
    assert refused(caplog, "first_token_layer") and "away from the unpatched model's" in caplog.text
    torch.testing.assert_close(outputs(model), outputs(plain), rtol=self_check.RTOL, atol=self_check.ATOL)


def test_wrong_attention_is_refused(
    tiny_dropout_model: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    right = attention._written_out
    # Padding left unmasked: the written-out formula as a careless release might get it.
    monkeypatch.setattr(attention, "_written_out", lambda q, k, v, mask, *rest: right(q, k, v, None, *rest))
    model = classifier(tiny_dropout_model)
    assert apply_speedups(model, TrainingConfig(), "cpu") == ["first_token_layer", "sliced_mask_dropout"]
    assert model.config._attn_implementation == model.bert.config._attn_implementation == "sdpa"
    assert refused(caplog, "sliced_mask_attention")


def test_attention_is_refused_when_transformers_internals_are_gone(
    tiny_dropout_model: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "transformers.masking_utils", None)  # import fails
    model = classifier(tiny_dropout_model)
    assert apply_speedups(model, TrainingConfig(), "cpu") == ["first_token_layer", "sliced_mask_dropout"]
    assert model.config._attn_implementation == "sdpa"
    assert refused(caplog, "sliced_mask_attention") and "transformers.masking_utils" in caplog.text


def test_wrong_dropout_masks_are_refused(
    tiny_dropout_model: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    right = dropout.sliced_mask_dropout
    monkeypatch.setattr(dropout, "sliced_mask_dropout", lambda input, p: right(input, p / 2))
    model = classifier(tiny_dropout_model)
    assert "sliced_mask_dropout" not in apply_speedups(model, TrainingConfig(), "cpu")
    assert not any(isinstance(m, SlicedMaskDropout) for m in model.modules())
    assert any(type(m) is nn.Dropout for m in model.modules())
    assert refused(caplog, "sliced_mask_dropout") and "not scaled" in caplog.text


class PrefixTuned(nn.Module):
    """A classifier driven as prefix tuning drives it: three virtual tokens' keys and values as a cache."""

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        self.classifier = classifier

    def get_input_embeddings(self) -> nn.Module:
        return self.classifier.get_input_embeddings()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        batch = input_ids.shape[0]
        mask = torch.cat([attention_mask.new_ones(batch, 3), attention_mask], dim=1)
        cache = prefix_cache(self.classifier.config, batch)
        return self.classifier(input_ids=input_ids, attention_mask=mask, cache=cache)


def test_a_first_token_layer_that_misses_a_prefix_cache_is_refused(
    tiny_dropout_model: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = PrefixTuned(classifier(tiny_dropout_model))
    assert apply_speedups(model, TrainingConfig(), "cpu", training=False) == ["first_token_layer"]
    # Before it knew transformers 5's name for the cache, it looked for `past_key_values` only.
    monkeypatch.setattr(first_token_layer, "CACHE_ARGUMENTS", ("past_key_values",))
    model = PrefixTuned(classifier(tiny_dropout_model))
    assert apply_speedups(model, TrainingConfig(), "cpu", training=False) == []
    assert "forward" not in vars(model.classifier.bert.encoder.layer[-1])
    assert refused(caplog, "first_token_layer")


def test_a_model_the_check_cannot_run_gets_nothing(caplog: pytest.LogCaptureFixture) -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.1))
    assert apply_speedups(model, TrainingConfig(), "cpu") == []
    assert type(model[1]) is nn.Dropout
    assert "does not run on the self-check's input" in caplog.text
