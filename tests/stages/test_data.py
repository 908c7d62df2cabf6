from pathlib import Path

import pytest

import tunesmith
from tests.conftest import ner_sentences, write_conll
from tunesmith.config import validate_config
from tunesmith.data.augment import lexicon
from tunesmith.errors import UserError
from tunesmith.stages.data import augment_train, encode_data, load_data
from tunesmith.stages.plan import plan_run

# Edits that need no lexicon, so these tests run without the augment extra.
PLAIN_EDITS = ["swap", "delete", "cutoff"]


def augmented_splits(config: dict) -> dict:
    plan = plan_run(validate_config(config, "test"))
    return augment_train(plan, encode_data(plan, load_data(plan)))


def test_only_train_grows_and_two_runs_give_the_same_rows(tiny_config: dict) -> None:
    plain = augmented_splits(tiny_config)
    config = {**tiny_config, "augmentation": {"operations": PLAIN_EDITS, "alpha": 0.2, "copies": 2}}
    first, second = augmented_splits(config), augmented_splits(config)
    assert first["train"].to_dict() == second["train"].to_dict()
    train = plain["train"]
    assert first["train"][: len(train)] == train[:]
    # Two copies per row, less those an edit left as they were (a deletion that drew no word).
    assert 2 * len(train) < len(first["train"]) <= 3 * len(train)
    label_at = dict(zip(train["line"], train["labels"], strict=True))
    new = first["train"].select(range(len(train), len(first["train"])))
    assert new["labels"] == [label_at[line] for line in new["line"]]
    assert all(text not in train["text"] for text in new["text"][:5])
    for name in ("validation", "test"):
        assert first[name].to_dict() == plain[name].to_dict()
    reseeded = augmented_splits({**config, "augmentation": {**config["augmentation"], "seed": 5}})
    assert reseeded["train"]["text"] != first["train"]["text"]


def test_the_seed_defaults_to_the_training_seed(tiny_config: dict) -> None:
    config = {**tiny_config, "augmentation": {"operations": ["swap"]}}
    by_default = augmented_splits(config)["train"]["text"]
    explicit = augmented_splits({**config, "augmentation": {"operations": ["swap"], "seed": 42}})["train"]["text"]
    assert by_default == explicit


def test_a_tiny_run_trains_on_the_new_rows(tiny_config: dict) -> None:
    plain = tunesmith.finetune({**tiny_config, "training": {**tiny_config["training"], "epochs": 1}}).metrics
    config = {
        **tiny_config,
        "output_dir": tiny_config["output_dir"] + "-augmented",
        "training": {**tiny_config["training"], "epochs": 1},
        "augmentation": {"operations": ["cutoff"], "alpha": 0.3},
    }
    metrics = tunesmith.finetune(config).metrics
    examples = metrics["training"]["examples"]
    assert examples["train"] == 2 * plain["training"]["examples"]["train"]
    assert examples["validation"] == plain["training"]["examples"]["validation"]
    assert 0.0 <= metrics["validation"]["accuracy"] <= 1.0


def test_a_tiny_ner_run_with_mention_replacement_keeps_its_tags(tiny_model: str, tmp_path: Path) -> None:
    train = write_conll(tmp_path / "train.conll", ner_sentences(24))
    config = {
        "model": tiny_model,
        "task": "ner",
        "output_dir": str(tmp_path / "run"),
        "data": {"train": str(train)},
        "training": {"epochs": 1, "batch_size": 8},
        "augmentation": {"operations": ["entity"], "alpha": 1.0},
    }
    splits = augmented_splits(config)
    rows = len(splits["train"])
    assert rows > 20
    for tokens, labels in zip(splits["train"]["text"], splits["train"]["labels"], strict=True):
        assert len(tokens) == len(labels)
    metrics = tunesmith.finetune(config).metrics
    assert metrics["training"]["examples"]["train"] == rows


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"augmentation": {"operations": ["swap", "swap"]}}, "names an operation twice"),
        ({"augmentation": {"operations": ["entity"]}}, "task classification has no tags"),
        ({"task": "ner", "augmentation": {"operations": ["swap"]}}, r"use augmentation.operations: \[entity\]"),
        ({"augmentation": {"operations": ["swap"], "alpha": 0}}, "alpha"),
        ({"augmentation": {"operations": ["shuffle"]}}, "operations"),
        ({"method": "zero_shot", "augmentation": {"operations": ["swap"]}}, "drop augmentation.operations"),
    ],
)
def test_bad_augmentation_settings_are_refused_by_name(settings: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        validate_config({"data": {"train": "train.csv"}, **settings}, "config.yaml")


def test_without_wordnet_a_synonym_run_stops_before_its_folder(
    tiny_config: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lexicon, "installed_version", lambda name: None)
    with pytest.raises(UserError, match=r"tunesmith\[augment\]"):
        tunesmith.finetune({**tiny_config, "augmentation": {"operations": ["swap", "synonym"]}})
    assert not Path(tiny_config["output_dir"]).exists()
