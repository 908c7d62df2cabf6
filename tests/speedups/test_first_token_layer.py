import pytest
import torch
from peft import LoraConfig, TaskType, get_peft_model
from transformers import (
    AutoModelForSequenceClassification,
    BertConfig,
    BertForSequenceClassification,
    BertForTokenClassification,
    DynamicCache,
    ElectraConfig,
    RobertaConfig,
)

from tunesmith.speedups import first_token_layer
from tunesmith.speedups.first_token_layer import CACHE_ARGUMENTS, first_token_last_layer
from tunesmith.train.activation_checkpointing import checkpoint_activations

SIZES = {"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 32}
CONFIGS = {
    "bert": lambda **kw: BertConfig(vocab_size=60, **SIZES, **kw),
    "roberta": lambda **kw: RobertaConfig(vocab_size=60, pad_token_id=1, **SIZES, **kw),
    "electra": lambda **kw: ElectraConfig(vocab_size=60, embedding_size=16, **SIZES, **kw),
}


def pair(kind: str, attention: str = "sdpa") -> tuple[torch.nn.Module, torch.nn.Module]:
    """Two copies of one random sequence classifier, dropout off; the second's last layer first-token only."""
    torch.manual_seed(0)
    config = CONFIGS[kind](num_labels=3, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    config._attn_implementation = attention
    full = AutoModelForSequenceClassification.from_config(config)
    fast = AutoModelForSequenceClassification.from_config(config)
    fast.load_state_dict(full.state_dict())
    assert first_token_last_layer(fast)
    return full, fast


def padded_batch() -> dict[str, torch.Tensor]:
    ids = torch.randint(5, 60, (4, 9))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    mask[3, 2:] = 0
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([0, 2, 1, 2])}


@pytest.mark.parametrize(
    ("kind", "attention"), [("bert", "sdpa"), ("bert", "eager"), ("roberta", "sdpa"), ("electra", "sdpa")]
)
def test_logits_and_every_gradient_match_the_full_model(kind: str, attention: str) -> None:
    full, fast = pair(kind, attention)
    batch = padded_batch()
    full_out, fast_out = full(**batch), fast(**batch)
    torch.testing.assert_close(fast_out.logits, full_out.logits)
    full_out.loss.backward()
    fast_out.loss.backward()
    gradients = dict(fast.named_parameters())
    for name, parameter in full.named_parameters():
        if parameter.grad is None:  # e.g. an embedding row that no token used
            continue
        torch.testing.assert_close(gradients[name].grad, parameter.grad, msg=name)


def test_the_last_layer_passes_on_the_first_position_only() -> None:
    _, fast = pair("bert")
    out = fast(**padded_batch(), output_hidden_states=True)
    assert out.hidden_states[-1].shape[1] == 1
    assert out.hidden_states[-2].shape[1] == 9


def test_lora_wraps_the_same_projections() -> None:
    full, fast = pair("bert")
    lora = LoraConfig(task_type=TaskType.SEQ_CLS, r=4, target_modules=["query", "value"], init_lora_weights=False)
    full, fast = get_peft_model(full, lora), get_peft_model(fast, lora)
    fast.load_state_dict(full.state_dict())
    batch = padded_batch()
    torch.testing.assert_close(fast(**batch).logits, full(**batch).logits)


def prefix_cache(config: BertConfig, batch: int, virtual_tokens: int = 3) -> DynamicCache:
    """Keys and values of virtual tokens for every layer: what prefix tuning hands the model."""
    generator = torch.Generator().manual_seed(1)
    cache = DynamicCache(config=config)
    heads, size = config.num_attention_heads, config.hidden_size // config.num_attention_heads
    for layer in range(config.num_hidden_layers):
        keys, values = (torch.randn(batch, heads, virtual_tokens, size, generator=generator) for _ in range(2))
        cache.update(keys, values, layer)
    return cache


def test_prefix_tuning_runs_the_layers_usual_forward() -> None:
    # Driven as peft's prefix tuning drives a model: the prefix as a cache, which transformers 5
    # hands each layer as `cache=`, and the mask widened over the virtual tokens. (peft 0.21 itself
    # refuses to prefix-tune a BERT classifier on transformers 5: it looks for `past_key_values`.)
    # The first-token forward would attend to the prefix's keys without the mask's virtual tokens.
    full, fast = pair("bert")
    batch = padded_batch()
    mask = torch.cat([torch.ones(4, 3, dtype=torch.long), batch["attention_mask"]], dim=1)
    outputs = [
        model(input_ids=batch["input_ids"], attention_mask=mask, cache=prefix_cache(model.config, 4)).logits
        for model in (full, fast)
    ]
    torch.testing.assert_close(outputs[1], outputs[0])


@pytest.mark.parametrize("name", CACHE_ARGUMENTS)
def test_a_cache_under_any_of_its_names_takes_the_layers_usual_forward(name: str) -> None:
    _, fast = pair("bert")
    last = fast.bert.encoder.layer[-1]
    usual = []
    hidden = torch.randn(2, 5, 16)
    out = first_token_layer._first_position_forward(
        last, lambda *args, **kwargs: usual.append(kwargs) or hidden, hidden, None, None, **{name: object()}
    )
    assert out is hidden and len(usual) == 1 and name in usual[0]
    assert first_token_layer._first_position_forward(last, None, hidden, None, None, **{name: None}).shape[1] == 1


@pytest.mark.parametrize("checkpointing_first", [False, True])
def test_gradient_checkpointing_still_trains_the_same(checkpointing_first: bool) -> None:
    full, fast = pair("bert")
    if checkpointing_first:  # as finetune does: the speedups come after the strategy's prepare
        undo = first_token_last_layer(fast)
        undo()
        checkpoint_activations(fast)
        first_token_last_layer(fast)
    else:
        checkpoint_activations(fast)
    batch = padded_batch()
    full(**batch).loss.backward()
    fast(**batch).loss.backward()
    torch.testing.assert_close(
        fast.bert.encoder.layer[0].attention.self.query.weight.grad,
        full.bert.encoder.layer[0].attention.self.query.weight.grad,
    )


def test_models_whose_head_reads_every_token_are_left_alone() -> None:
    tagger = BertForTokenClassification(CONFIGS["bert"]())
    assert first_token_last_layer(tagger) is None
    assert "forward" not in vars(tagger.bert.encoder.layer[-1])
    decoder = BertForSequenceClassification(CONFIGS["bert"](is_decoder=True))
    assert first_token_last_layer(decoder) is None


def test_undo_restores_the_layers_own_forward() -> None:
    full, _ = pair("bert")
    undo = first_token_last_layer(full)
    assert "forward" in vars(full.bert.encoder.layer[-1])
    undo()
    assert "forward" not in vars(full.bert.encoder.layer[-1])
    assert full(**padded_batch(), output_hidden_states=True).hidden_states[-1].shape[1] == 9


def test_a_classifier_inside_peft_is_found() -> None:
    full, _ = pair("bert")
    lora = get_peft_model(full, LoraConfig(task_type=TaskType.SEQ_CLS, r=4, target_modules=["query"]))
    assert first_token_last_layer(lora) is not None
    assert "forward" in vars(lora.base_model.model.bert.encoder.layer[-1])
