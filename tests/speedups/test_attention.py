import json
from pathlib import Path

import pytest
import torch
from torch import nn
from transformers import AutoModelForSequenceClassification
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from tests.conftest import write_tiny_bert
from tunesmith.speedups import attention
from tunesmith.speedups.attention import (
    CHECK_NAME,
    NAME,
    sdpa_with_sliced_mask_dropout,
    use_sliced_mask_attention,
    written_out_for_the_check,
    written_out_without_dropout,
)
from tunesmith.speedups.dropout import sliced_mask_dropout

P = 0.25


class Attention(nn.Module):
    def __init__(self, causal: bool = False) -> None:
        super().__init__()
        self.is_causal = causal


def inputs(keys: int = 7, queries: int = 7, padded: int = 2) -> tuple:
    generator = torch.Generator().manual_seed(0)
    query = torch.randn(3, 2, queries, 8, generator=generator, requires_grad=True)
    key, value = (torch.randn(3, 2, keys, 8, generator=generator, requires_grad=True) for _ in range(2))
    mask = torch.ones(3, 1, queries, keys, dtype=torch.bool)
    mask[1, :, :, keys - padded :] = False  # the second sequence's last keys are padding
    return query, key, value, mask


def eager_with_noise(query, key, value, mask, noise) -> torch.Tensor:
    """Eager attention whose probabilities are multiplied by a given dropout noise."""
    scores = query @ key.transpose(-1, -2) / query.shape[-1] ** 0.5
    scores = scores.masked_fill(~mask, float("-inf"))
    return (torch.softmax(scores, dim=-1) * noise @ value).transpose(1, 2)


@pytest.mark.parametrize("float_mask", [False, True])
def test_it_is_eager_attention_with_a_sliced_mask(float_mask: bool) -> None:
    query, key, value, mask = inputs()
    given = torch.zeros(mask.shape).masked_fill(~mask, torch.finfo(torch.float32).min) if float_mask else mask
    torch.manual_seed(3)
    ours, weights = sdpa_with_sliced_mask_dropout(Attention(), query, key, value, given, dropout=P)
    torch.manual_seed(3)  # the same draws, made into the noise that multiplies the probabilities
    noise = sliced_mask_dropout(torch.ones(3, 2, 7, 7), P)
    assert weights is None and (noise == 0).any()
    theirs = eager_with_noise(query, key, value, mask, noise)
    torch.testing.assert_close(ours, theirs)
    upstream = torch.randn(ours.shape)
    our_grads = torch.autograd.grad(ours, (query, key, value), upstream)
    their_grads = torch.autograd.grad(theirs, (query, key, value), upstream)
    for our_grad, their_grad in zip(our_grads, their_grads, strict=True):
        torch.testing.assert_close(our_grad, their_grad)


def test_padded_keys_take_no_attention() -> None:
    query, key, value, mask = inputs()
    torch.manual_seed(4)
    before, _ = sdpa_with_sliced_mask_dropout(Attention(), query, key, value, mask, dropout=P)
    value = value.detach().clone()
    value[1, :, -2:] = 1e6
    torch.manual_seed(4)
    after, _ = sdpa_with_sliced_mask_dropout(Attention(), query, key, value, mask, dropout=P)
    assert torch.equal(before, after)


def test_a_causal_mask_that_is_given_is_followed() -> None:
    query, key, value, _ = inputs()
    causal = torch.ones(7, 7, dtype=torch.bool).tril().expand(3, 1, 7, 7)
    torch.manual_seed(5)
    ours, _ = sdpa_with_sliced_mask_dropout(Attention(causal=True), query, key, value, causal, dropout=P)
    torch.manual_seed(5)
    theirs = eager_with_noise(query, key, value, causal, sliced_mask_dropout(torch.ones(3, 2, 7, 7), P))
    torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize("case", ["no dropout", "causal, no mask", "grouped query"])
def test_where_it_would_not_help_it_is_sdpa(case: str) -> None:
    query, key, value, mask = inputs()
    module, dropout = Attention(), P
    if case == "no dropout":
        dropout = 0.0
    if case == "causal, no mask":
        module, mask = Attention(causal=True), None
    if case == "grouped query":
        key, value = key[:, :1], value[:, :1]
        module.num_key_value_groups = 2
    # SDPA's own dropout draws from the same generator: the same seed gives the same output.
    outputs = []
    for function in (sdpa_with_sliced_mask_dropout, sdpa_attention_forward):
        torch.manual_seed(6)
        outputs.append(function(module, query, key, value, mask, dropout=dropout)[0])
    assert torch.equal(*outputs)


@pytest.fixture(scope="module")
def dropout_bert(tmp_path_factory: pytest.TempPathFactory) -> str:
    return write_tiny_bert(tmp_path_factory.mktemp("dropout-bert"), dropout=0.3)


def test_a_model_is_switched_and_saved_as_an_sdpa_model(
    dropout_bert: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = AutoModelForSequenceClassification.from_pretrained(dropout_bert, num_labels=2)
    plain = AutoModelForSequenceClassification.from_pretrained(dropout_bert, num_labels=2)
    plain.load_state_dict(model.state_dict())
    undo = use_sliced_mask_attention(model)
    assert undo is not None and model.config._attn_implementation == NAME
    ids = torch.randint(1000, 2000, (4, 9))
    mask = torch.ones_like(ids)
    mask[2, 6:] = 0
    model.eval()
    plain.eval()
    assert torch.equal(
        model(input_ids=ids, attention_mask=mask).logits, plain(input_ids=ids, attention_mask=mask).logits
    )
    drawn = []
    monkeypatch.setattr(attention, "sliced_mask_dropout", lambda x, p: drawn.append(p) or sliced_mask_dropout(x, p))
    model.train()(input_ids=ids, attention_mask=mask)
    assert drawn == [0.3, 0.3]  # each of the two layers' attention probabilities
    model.save_pretrained(tmp_path)
    assert NAME not in json.loads((tmp_path / "config.json").read_text()).values()
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert reloaded.config._attn_implementation == "sdpa"
    eager = AutoModelForSequenceClassification.from_pretrained(dropout_bert, attn_implementation="eager")
    assert use_sliced_mask_attention(eager) is None and eager.config._attn_implementation == "eager"
    undo()
    assert model.config._attn_implementation == model.bert.config._attn_implementation == "sdpa"


def test_the_checks_variant_is_the_written_out_formula_without_dropout_and_sdpas_numbers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    query, key, value, mask = inputs()
    written = []
    formula = attention._written_out
    monkeypatch.setattr(attention, "_written_out", lambda *args: written.append(args[-1]) or formula(*args))
    ours, _ = written_out_without_dropout(Attention(), query, key, value, mask, dropout=0.0)
    assert written == [0.0]
    theirs, _ = sdpa_attention_forward(Attention(), query, key, value, mask, dropout=0.0)
    torch.testing.assert_close(ours, theirs)


def test_within_the_check_a_switched_model_runs_the_checks_variant(dropout_bert: str) -> None:
    model = AutoModelForSequenceClassification.from_pretrained(dropout_bert, num_labels=2)
    use_sliced_mask_attention(model)
    with written_out_for_the_check(model):
        assert model.config._attn_implementation == model.bert.config._attn_implementation == CHECK_NAME
    assert model.config._attn_implementation == model.bert.config._attn_implementation == NAME
