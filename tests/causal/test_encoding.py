from pathlib import Path

import pytest
from transformers import AutoTokenizer

from tunesmith.causal import templates
from tunesmith.causal.encoding import IGNORE, encode
from tunesmith.causal.packing import collator


@pytest.fixture
def tokenizer(tiny_gpt2: str):
    return AutoTokenizer.from_pretrained(tiny_gpt2)


def learnt_text(tokenizer, encoded) -> str:
    return tokenizer.decode([token for token in encoded.labels if token != IGNORE])


def test_labels_are_ignored_exactly_on_the_prompt_and_the_completion_ends_in_eos(tokenizer) -> None:
    row = {"prompt": "the cat sat on", "completion": " a mat"}
    encoded = encode(tokenizer, row, max_length=64)
    prompt_ids = tokenizer(row["prompt"])["input_ids"]
    assert encoded.input_ids[: len(prompt_ids)] == prompt_ids
    assert encoded.labels[: len(prompt_ids)] == [IGNORE] * len(prompt_ids)
    assert all(label != IGNORE for label in encoded.labels[len(prompt_ids) :])
    assert encoded.input_ids[-1] == encoded.labels[-1] == tokenizer.eos_token_id
    assert learnt_text(tokenizer, encoded) == " a mat" + tokenizer.eos_token


def test_train_on_prompt_learns_every_token(tokenizer) -> None:
    encoded = encode(tokenizer, {"prompt": "the cat", "completion": " sat"}, 64, train_on_prompt=True)
    assert encoded.labels == encoded.input_ids


def test_plain_text_learns_everything_and_eos(tokenizer) -> None:
    encoded = encode(tokenizer, {"text": "the big red sun"}, 64)
    assert encoded.labels == encoded.input_ids and encoded.labels[-1] == tokenizer.eos_token_id


def test_a_pad_token_equal_to_eos_never_masks_the_real_eos(tokenizer) -> None:
    tokenizer.pad_token = tokenizer.eos_token
    rows = [encode(tokenizer, {"prompt": "the", "completion": " cat"}, 64),
            encode(tokenizer, {"prompt": "the dog ran far away", "completion": " to see"}, 64)]  # fmt: skip
    batch = collator(tokenizer.pad_token_id)([{"input_ids": r.input_ids, "labels": r.labels} for r in rows])
    short = len(rows[0].input_ids)
    targets = batch["labels"][0].tolist()
    # The next-token target before the EOS is the EOS; padding after it (also the EOS id) is ignored.
    assert targets[short - 2] == tokenizer.eos_token_id
    assert targets[short - 1 :] == [IGNORE] * (len(targets) - short + 1)
    assert batch["input_ids"][0, short:].tolist() == [tokenizer.eos_token_id] * (len(targets) - short)
    assert batch["attention_mask"][0].tolist() == [1] * short + [0] * (len(targets) - short)


def test_every_assistant_turn_and_its_end_of_turn_token_learn_and_nothing_else(tokenizer) -> None:
    added = templates.set_template(tokenizer, "chatml", needed=True)
    assert added == ["<|im_start|>", "<|im_end|>"]
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "say cat"},
        {"role": "assistant", "content": "cat"},
        {"role": "user", "content": "again"},
        {"role": "assistant", "content": "cat cat"},
    ]
    encoded = encode(tokenizer, {"messages": messages}, 128)
    assert learnt_text(tokenizer, encoded) == "cat<|im_end|>\ncat cat<|im_end|>\n"
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    # Five turns end with <|im_end|>; only the assistant's two carry labels.
    ends = [i for i, token in enumerate(encoded.input_ids) if token == end]
    assert len(ends) == 5 and [encoded.labels[i] for i in ends].count(end) == 2
    assert templates.end_of_turn_ids(tokenizer, "chatml") == sorted({tokenizer.eos_token_id, end})


def test_an_example_whose_completion_truncation_cuts_away_is_flagged(tokenizer) -> None:
    encoded = encode(tokenizer, {"prompt": "the cat sat on a mat and ran far away", "completion": " home"}, 4)
    assert encoded.cut_away and len(encoded.input_ids) == 4 and set(encoded.labels) == {IGNORE}
    assert not encode(tokenizer, {"prompt": "the", "completion": " cat"}, 4).cut_away


def test_the_tokenizers_own_template_is_used_and_its_end_of_turn_found(tokenizer, tmp_path: Path) -> None:
    templates.set_template(tokenizer, "zephyr", needed=True)
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert templates.set_template(reloaded, None, needed=True) == []
    assert reloaded.convert_tokens_to_ids("<|endofturn|>") in templates.end_of_turn_ids(reloaded, None)
