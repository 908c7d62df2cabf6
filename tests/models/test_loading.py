"""Every model folder is read the same guarded way: no code of its own, whole safetensors, every weight."""

import json
import pickle
import re
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification

from tests.conftest import WritesMarker, edit_weights
from tunesmith.errors import UserError
from tunesmith.models.loading import check_model_folder, load_tokenizer, load_weights


@pytest.fixture
def backbone(tiny_model: str, tmp_path: Path) -> Path:
    """A copy of the tiny BERT that a test may damage."""
    return Path(shutil.copytree(tiny_model, tmp_path / "backbone"))


def load_head(folder: Path, kind: str):
    return load_weights(AutoModelForSequenceClassification, folder, kind, num_labels=2)


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: b"",
        lambda data: data[: len(data) // 2],
        lambda data: data[:-1],
        lambda data: b'{"model_type": "bert"}',
    ],
    ids=["empty", "half", "one-byte-short", "not-safetensors"],
)
def test_a_weights_file_that_is_not_whole_is_refused_before_anything_reads_it(backbone: Path, damage) -> None:
    check_model_folder(backbone, "backbone")  # whole, it passes
    weights = backbone / "model.safetensors"
    weights.write_bytes(damage(weights.read_bytes()))
    with pytest.raises(UserError, match="not a whole safetensors file") as refused:
        check_model_folder(backbone, "backbone")
    assert str(weights) in str(refused.value) and "save_pretrained" in str(refused.value)
    with pytest.raises(UserError, match="not a whole safetensors file"):
        load_head(backbone, "backbone")


def test_pickled_weights_are_refused_and_never_unpickled(backbone: Path, tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    (backbone / "model.safetensors").unlink()
    (backbone / "pytorch_model.bin").write_bytes(pickle.dumps(WritesMarker(marker)))
    with pytest.raises(UserError, match="holds its weights as pytorch_model.bin, not model.safetensors") as refused:
        load_head(backbone, "backbone")
    assert str(backbone) in str(refused.value) and "a pickle can run code" in str(refused.value)
    assert not marker.exists()


def test_a_folder_without_weights_says_so(backbone: Path) -> None:
    (backbone / "model.safetensors").unlink()
    with pytest.raises(UserError, match=r"has no weights \(model.safetensors is missing\)"):
        check_model_folder(backbone, "backbone")


@pytest.mark.parametrize("file", ["config.json", "tokenizer_config.json"])
def test_a_folder_that_names_code_of_its_own_is_refused_even_with_a_known_model_type(
    backbone: Path, tmp_path: Path, file: str
) -> None:
    # With model_type bert, transformers would quietly build its own BERT in place of the named classes.
    marker = tmp_path / "code-ran"
    (backbone / "custom.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    settings = json.loads((backbone / file).read_text())
    settings["auto_map"] = {"AutoConfig": "custom.Config", "AutoTokenizer": ["custom.Tokenizer", None]}
    (backbone / file).write_text(json.dumps(settings))
    expected = rf"{re.escape(str(backbone))} ships its own Python code \(auto_map in its {file}\)"
    with pytest.raises(UserError, match=expected):
        load_head(backbone, "backbone")
    with pytest.raises(UserError, match=expected):
        load_tokenizer(backbone, "backbone")
    assert not marker.exists()


def test_a_damaged_tokenizer_file_is_a_clear_error(backbone: Path) -> None:
    tokenizer = backbone / "tokenizer.json"
    tokenizer.write_bytes(tokenizer.read_bytes()[:1000])
    with pytest.raises(UserError, match=f"Model {re.escape(str(backbone))} has no usable tokenizer"):
        load_tokenizer(backbone, "backbone")


@pytest.fixture
def trained(tiny_model: str, tmp_path: Path) -> Path:
    """A classifier saved as a run's model/ is: every weight, head included."""
    folder = tmp_path / "model"
    AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=2).save_pretrained(folder)
    return folder


def test_a_whole_trained_model_loads_with_the_weights_it_was_saved_with(trained: Path) -> None:
    model = load_head(trained, "run")
    saved = load_file(str(trained / "model.safetensors"))
    assert set(saved) == set(model.state_dict())
    assert all((model.state_dict()[name] == tensor).all() for name, tensor in saved.items())


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda w: w.pop("classifier.weight"), r"1 missing \(classifier.weight\)"),
        (lambda w: w.pop("bert.encoder.layer.1.output.dense.bias"), r"1 missing \(bert.encoder.layer.1.output"),
        (
            lambda w: w.update({"classifier.extra": w["classifier.bias"].clone()}),
            r"1 unknown to the model \(classifier.extra",
        ),
        (
            lambda w: w.update({"classifier.weight": w["classifier.weight"][:1].clone()}),
            r"1 of another shape \(classifier.",
        ),
    ],
    ids=["head-missing", "encoder-missing", "unknown", "reshaped"],
)
def test_a_trained_model_missing_or_holding_other_weights_is_refused(trained: Path, change, expected: str) -> None:
    edit_weights(trained / "model.safetensors", change)
    with pytest.raises(
        UserError, match=f"Model {re.escape(str(trained))} does not hold every weight the model needs: {expected}"
    ):
        load_head(trained, "run")


def test_a_backbone_may_lack_its_head_and_pooler_but_not_encoder_weights(trained: Path) -> None:
    edit_weights(
        trained / "model.safetensors",
        lambda w: [w.pop(name) for name in list(w) if "classifier" in name or "pooler" in name],
    )
    assert load_head(trained, "backbone").classifier.weight.shape == (2, 32)
    edit_weights(trained / "model.safetensors", lambda w: w.pop("bert.embeddings.word_embeddings.weight"))
    with pytest.raises(UserError, match=r"1 missing \(bert.embeddings.word_embeddings.weight\)"):
        load_head(trained, "backbone")


def test_a_backbone_head_of_another_shape_starts_afresh(trained: Path) -> None:
    # A fine-tuned classifier as the backbone of a task with other labels: its head is replaced, not a crash.
    model = load_weights(AutoModelForSequenceClassification, trained, "backbone", num_labels=5)
    assert model.classifier.weight.shape == (5, 32)
