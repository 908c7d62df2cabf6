from tunesmith.pretrain.config import PretrainConfig


def test_a_warmup_in_steps_replaces_the_pretraining_warmup_ratio() -> None:
    base = {"data": {"train": ["corpus.txt"]}, "tokenizer": "tok"}
    assert PretrainConfig(**base).training.warmup_ratio == 0.06
    given = PretrainConfig(**base, training={"warmup_steps": 100}).training
    assert (given.warmup_steps, given.warmup_ratio) == (100, None)
    # The saved config (defaults filled in) reads back as it was.
    saved = PretrainConfig(**base, training={"warmup_steps": 100}).model_dump(mode="json")
    assert PretrainConfig(**saved).model_dump(mode="json") == saved
