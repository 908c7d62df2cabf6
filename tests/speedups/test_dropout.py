import pytest
import torch
from torch import nn
from transformers import BertConfig, BertForSequenceClassification

from tunesmith.speedups import dropout
from tunesmith.speedups.dropout import SlicedMaskDropout, check_statistics, use_sliced_mask_dropout

ELEMENTS = 1 << 22


def kept_share(mask: torch.Tensor) -> float:
    return mask.float().mean().item()


def standard_errors(share: float, kept: float, count: int) -> float:
    return abs(share - kept) / (kept * (1 - kept) / count) ** 0.5


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_each_of_the_four_slices_of_a_word_keeps_one_minus_p(p: float) -> None:
    # Slices at every offset in a word: a slice that missed a random bit would keep too many.
    torch.manual_seed(0)
    output = SlicedMaskDropout(p).train()(torch.ones(ELEMENTS))
    kept = output != 0
    for offset in range(4):
        assert standard_errors(kept_share(kept[offset::4]), 1 - p, ELEMENTS // 4) < 5, offset


def test_kept_elements_are_scaled_so_that_the_expectation_is_the_input() -> None:
    torch.manual_seed(1)
    output = SlicedMaskDropout(0.1).train()(torch.ones(ELEMENTS))
    kept_values = output[output != 0].unique()
    assert kept_values.tolist() == [pytest.approx(65536 / (65536 - round(0.1 * 65536)))]
    assert abs(output.mean().item() - 1) < 5 * (0.1 / 0.9 / ELEMENTS) ** 0.5


def test_neighbouring_elements_are_dropped_independently() -> None:
    torch.manual_seed(2)
    kept = (SlicedMaskDropout(0.5).train()(torch.ones(ELEMENTS)) != 0).float()
    both = (kept[:-1] * kept[1:]).mean().item()
    assert standard_errors(both, 0.25, ELEMENTS - 1) < 5


def test_backward_passes_gradient_through_the_forward_mask_only() -> None:
    torch.manual_seed(3)
    inputs = torch.randn(7, 13, requires_grad=True)  # 91 elements: not a whole number of words
    output = SlicedMaskDropout(0.3).train()(inputs)
    output.sum().backward()
    dropped = output == 0
    assert 0 < dropped.sum() < inputs.numel()
    assert torch.all(inputs.grad[dropped] == 0)
    torch.testing.assert_close(output[~dropped], inputs.detach()[~dropped] * inputs.grad[~dropped])


def test_a_seed_repeats_the_masks_and_another_seed_changes_them() -> None:
    dropout = SlicedMaskDropout(0.1).train()

    def mask(seed: int) -> torch.Tensor:
        torch.manual_seed(seed)
        return dropout(torch.ones(4, 100)) == 0

    assert torch.equal(mask(5), mask(5))
    assert not torch.equal(mask(5), mask(6))


@pytest.mark.parametrize("p", [0.0, 1.0])
def test_p_zero_and_one_and_evaluation_are_torchs_dropout(p: float) -> None:
    inputs = torch.randn(3, 5)
    torch.testing.assert_close(SlicedMaskDropout(p).train()(inputs), nn.functional.dropout(inputs, p, True))
    assert torch.equal(SlicedMaskDropout(0.4).eval()(inputs), inputs)


def test_bf16_inputs_keep_their_dtype() -> None:
    output = SlicedMaskDropout(0.2).train()(torch.ones(64, dtype=torch.bfloat16))
    assert output.dtype == torch.bfloat16


def test_every_dropout_of_a_bert_classifier_is_swapped_and_evaluation_is_unchanged() -> None:
    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32)
    model = BertForSequenceClassification(config).eval()
    plain = sum(type(module) is nn.Dropout for module in model.modules())
    ids = torch.randint(0, 50, (2, 6))
    before = model(input_ids=ids).logits
    undo = use_sliced_mask_dropout(model)
    assert undo is not None and plain > 0
    assert sum(type(module) is SlicedMaskDropout for module in model.modules()) == plain
    assert not any(type(module) is nn.Dropout for module in model.modules())
    torch.testing.assert_close(model(input_ids=ids).logits, before)
    model.train()
    assert not torch.equal(model(input_ids=ids).logits, before)
    undo()
    assert sum(type(module) is nn.Dropout for module in model.modules()) == plain


def test_a_model_without_dropout_is_not_patched() -> None:
    assert use_sliced_mask_dropout(nn.Sequential(nn.Linear(2, 2))) is None


def test_the_statistics_check_passes_the_masks_and_catches_a_biased_slice(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(7)
    assert check_statistics() is None
    right = dropout.sliced_mask_dropout

    def biased(input: torch.Tensor, p: float) -> torch.Tensor:
        output = right(input, p)
        output[1::4] = input[1::4] * (65536 / (65536 - round(p * 65536)))  # the second slice keeps every element
        return output

    monkeypatch.setattr(dropout, "sliced_mask_dropout", biased)
    assert "slice 1" in check_statistics()
    monkeypatch.setattr(dropout, "sliced_mask_dropout", lambda input, p: right(input, p) * 1.5)
    assert "scaled" in check_statistics()


def test_backward_keeps_a_byte_per_element() -> None:
    # A float noise tensor would keep four bytes an element of every dropped activation.
    saved = []

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        saved.append(tensor.element_size() * tensor.numel())
        return tensor

    input = torch.randn(64, 32, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        output = SlicedMaskDropout(0.2).train()(input)
    assert sum(saved) == input.numel()
    output.sum().backward()
    assert torch.equal(input.grad, (output != 0).float() * (65536 / (65536 - round(0.2 * 65536))))
