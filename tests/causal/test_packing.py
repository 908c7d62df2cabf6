import random

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from tunesmith.causal.encoding import encode
from tunesmith.causal.packing import IGNORE, best_fit, collator, next_token_targets
from tunesmith.tasks.causal import CausalTask


def test_best_fit_fills_rows_without_overflow_and_places_every_example_once() -> None:
    rng = random.Random(0)
    lengths = [rng.randint(1, 40) for _ in range(300)]
    rows = best_fit(lengths, 64)
    assert sorted(i for row in rows for i in row) == list(range(300))
    assert all(sum(lengths[i] for i in row) <= 64 for row in rows)
    # Best fit decreasing wastes little: within a row of the lower bound.
    assert len(rows) <= -(-sum(lengths) // 64) + 1
    assert best_fit(lengths, 64) == rows


def test_targets_never_cross_from_one_packed_example_to_the_next() -> None:
    labels = [1, 2, 3, IGNORE, 5, 6]
    assert next_token_targets(labels, [0, 1, 2, 0, 1, 2]) == [2, 3, IGNORE, 5, 6, IGNORE]
    assert next_token_targets(labels, None) == [2, 3, IGNORE, 5, 6, IGNORE]
    assert next_token_targets([1, 2, 3], [0, 0, 1]) == [IGNORE, 3, IGNORE]


def examples(tokenizer) -> list:
    texts = [("the cat sat", " on a mat"), ("a dog", " ran far away to see the sun"), ("big red", " tree")]
    return [encode(tokenizer, {"prompt": p, "completion": c}, 64) for p, c in texts]


@pytest.fixture(params=["tiny_gpt2", "tiny_llama"])
def decoder(request: pytest.FixtureRequest):
    folder = request.getfixturevalue(request.param)
    model = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="sdpa").eval()
    return model, AutoTokenizer.from_pretrained(folder)


def packed_row(rows: list) -> dict:
    return {
        "input_ids": [t for r in rows for t in r.input_ids],
        "labels": [t for r in rows for t in r.labels],
        "position_ids": [p for r in rows for p in range(len(r.input_ids))],
    }


def test_a_packed_row_gives_each_example_the_loss_it_has_alone(decoder) -> None:
    model, tokenizer = decoder
    model.config.use_cache = False
    rows = examples(tokenizer)
    task_loss = CausalTask.loss
    collate = collator(tokenizer.eos_token_id)
    packed = collate([packed_row(rows)])
    targets = packed.pop("labels")
    assert "attention_mask" not in packed
    with torch.no_grad():
        logits = model(**packed).logits
    per_token = torch.nn.functional.cross_entropy(logits[0], targets[0], ignore_index=IGNORE, reduction="none")
    start = 0
    for row in rows:
        alone = collate([{"input_ids": row.input_ids, "labels": row.labels}])
        alone_targets = alone.pop("labels")
        with torch.no_grad():
            sums, counts = task_loss(None, model(**alone).logits, alone_targets)
        stop = start + len(row.input_ids)
        # Float32 sums of some hundred nats, added in another order: equal to a few units in the last place.
        assert float(per_token[start:stop].sum()) == pytest.approx(float(sums[0]), rel=1e-6)
        assert int((targets[0, start:stop] != IGNORE).sum()) == int(counts[0])
        start = stop


def test_no_attention_weight_crosses_an_example_boundary(decoder) -> None:
    model, tokenizer = decoder
    model.set_attn_implementation("eager")
    model.config.use_cache = False
    rows = examples(tokenizer)
    packed = collator(tokenizer.eos_token_id)([packed_row(rows)])
    packed.pop("labels")
    with torch.no_grad():
        attentions = model(**packed, output_attentions=True).attentions
    example = torch.tensor([i for i, r in enumerate(rows) for _ in r.input_ids])
    across = example[:, None] != example[None, :]
    for layer in attentions:
        assert float(layer[0][:, across].abs().max()) == 0.0
        # and within an example, attention is causal and sums to one
        assert torch.allclose(layer[0].sum(-1), torch.ones_like(layer[0].sum(-1)), atol=1e-5)


def test_packed_rows_count_their_examples_and_the_truncated_ones() -> None:
    import datasets

    from tunesmith.causal.packing import pack
    from tunesmith.stages.evaluate import example_count
    from tunesmith.tasks.encoding import count_truncated

    lengths = [8, 3, 5, 8, 2]
    split = datasets.Dataset.from_dict({
        "input_ids": [[1] * n for n in lengths], "labels": [[1] * n for n in lengths], "length": lengths,
        "truncated": [1, 0, 0, 1, 0],
    })  # fmt: skip
    packed = pack(split, 8)
    assert example_count(packed) == 5 and count_truncated(packed, 8) == 2
    assert max(packed["length"]) <= 8 and len(packed) == 4
