"""The `loss:` section in each task: weights fitted on train and saved with the run, the loop's
weighted mean equal to torch's, combinations that do not fit refused, and a tiny run with each loss."""

import json
import math
from pathlib import Path

import datasets
import pytest
import torch
import torch.nn.functional as F  # noqa: N812

import tunesmith
from tests.conftest import ner_sentences, write_conll, write_multilabel_csv, write_regression_csv
from tunesmith.config import RunConfig, load_config
from tunesmith.errors import UserError
from tunesmith.tasks import get_task
from tunesmith.tasks.classification import ClassificationTask
from tunesmith.tasks.multilabel import MultiLabelTask
from tunesmith.tasks.ner import NerTask
from tunesmith.tasks.regression import RegressionTask

SOURCE = Path("train.csv")


def rows(labels: list) -> datasets.Dataset:
    return datasets.Dataset.from_dict(
        {"text": [f"t{i}" for i in range(len(labels))], "label": labels, "line": list(range(2, 2 + len(labels)))}
    )


def config(task: str = "classification", **loss: object) -> RunConfig:
    return RunConfig.model_validate({"task": task, "data": {"train": "t.csv"}, "loss": loss})


def fitted(task_class: type, labels: list, task: str = "classification", **loss: object):
    made = task_class(config(task, **loss))
    made.fit_labels(rows(labels), SOURCE)
    return made


def test_inverse_class_weights_are_fitted_saved_and_restored() -> None:
    task = fitted(ClassificationTask, ["a", "a", "a", "b"], class_weights="inverse")
    # 4 rows, 2 classes: 4 / (2 * 3) and 4 / (2 * 1).
    assert task.class_weights == pytest.approx([2 / 3, 2.0])
    restored = ClassificationTask(task.cfg, json.loads(json.dumps(task.state())))
    assert restored.class_weights == task.class_weights
    logits, targets = torch.randn(5, 2, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1, 1, 0, 0])
    sums, counts = restored.loss(logits, targets)
    reference = F.cross_entropy(logits, targets, weight=torch.tensor(task.class_weights))
    assert float(sums.sum() / counts.sum()) == pytest.approx(float(reference), rel=1e-6)


def test_unweighted_tasks_keep_their_state_and_loss() -> None:
    task = fitted(ClassificationTask, ["a", "b"])
    assert task.state() == {"names": ["a", "b"]}
    logits, targets = torch.randn(3, 2), torch.tensor([0, 1, 1])
    sums, counts = task.loss(logits, targets)
    assert counts.tolist() == [1.0, 1.0, 1.0]
    assert sums.tolist() == pytest.approx(F.cross_entropy(logits, targets, reduction="none").tolist())


def test_given_class_weights_are_read_by_label_name() -> None:
    assert fitted(ClassificationTask, ["neg", "pos"], class_weights={"neg": 4}).class_weights == [4.0, 1.0]
    with pytest.raises(UserError, match="loss.class_weights lists 3 weights but there are 2 labels"):
        fitted(ClassificationTask, ["neg", "pos"], class_weights=[1, 2, 3])


def test_binary_focal_alpha_weighs_the_positive_class() -> None:
    task = fitted(ClassificationTask, ["neg", "pos", "pos"], name="focal", alpha=0.25)
    assert task.class_weights == [0.75, 0.25]
    with pytest.raises(UserError, match="loss.alpha weighs the positive class of a binary task, but there are 3"):
        fitted(ClassificationTask, ["a", "b", "c"], name="focal", alpha=0.25)


def test_multilabel_pos_weight_from_train_and_bce_mean() -> None:
    task = fitted(MultiLabelTask, ["x", "x,y", "x", "z"], task="multilabel", pos_weight="inverse")
    # x: 3 of 4 rows, y: 1, z: 1.
    assert task.pos_weight == pytest.approx([1 / 3, 3.0, 3.0])
    restored = MultiLabelTask(task.cfg, task.state())
    logits = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    targets = torch.tensor([[1.0, 0, 0], [1, 1, 0], [0, 0, 1], [1, 0, 0]])
    sums, counts = restored.loss(logits, targets)
    reference = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(task.pos_weight))(logits, targets)
    assert float(sums.sum() / counts.sum()) == pytest.approx(float(reference), rel=1e-6)


def test_multilabel_focal_is_the_sigmoid_form() -> None:
    task = fitted(MultiLabelTask, ["x", "y"], task="multilabel", name="focal", gamma=0)
    logits, targets = torch.randn(3, 2), torch.tensor([[1.0, 0], [0, 1], [1, 1]])
    sums, _ = task.loss(logits, targets)
    assert sums.mean().item() == pytest.approx(F.binary_cross_entropy_with_logits(logits, targets).item(), rel=1e-6)


def test_regression_loss_name_and_delta() -> None:
    logits, targets = torch.tensor([[0.0], [10.0]]), torch.tensor([0.5, 0.0])
    huber = RegressionTask(config("regression", name="huber", huber_delta=2.0))
    # 0.5 * 0.5^2, and 2 * (10 - 0.5 * 2).
    assert huber.loss(logits, targets)[0].tolist() == pytest.approx([0.125, 18.0])
    legacy = RegressionTask(RunConfig.model_validate({"data": {"train": "t"}, "regression": {"loss": "huber"}}))
    assert legacy.loss(logits, targets)[0].tolist() == pytest.approx([0.125, 9.5])


def test_ner_weights_tokens_by_tag_and_keeps_the_ignore_index() -> None:
    task = NerTask(config("ner", class_weights="inverse"))
    train = datasets.Dataset.from_dict(
        {"text": [["a", "b", "c"], ["d", "e"]], "label": [["B-PER", "I-PER", "O"], ["O", "O"]], "line": [1, 5]}
    )
    task.fit_labels(train, Path("t.conll"))
    # Tags O, B-PER, I-PER: 3, 1 and 1 of 5 words.
    assert task.names == ["O", "B-PER", "I-PER"]
    assert task.class_weights == pytest.approx([5 / 9, 5 / 3, 5 / 3])
    logits = torch.randn(2, 4, 3, generator=torch.Generator().manual_seed(0))
    targets = torch.tensor([[-100, 1, 2, 0], [-100, 0, 0, -100]])
    sums, counts = NerTask(task.cfg, task.state()).loss(logits, targets)
    reference = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), weight=torch.tensor(task.class_weights))
    assert float(sums.sum() / counts.sum()) == pytest.approx(float(reference), rel=1e-6)
    assert counts.tolist() == pytest.approx([1 + 3 + 3, 2.0])  # weights scaled so that O weighs 1


def test_ner_label_smoothing_is_torchs() -> None:
    task = NerTask(config("ner", label_smoothing=0.1))
    task.names = ["O", "B-PER", "I-PER"]
    logits, targets = torch.randn(2, 3, 3), torch.tensor([[0, 1, -100], [2, -100, -100]])
    sums, counts = task.loss(logits, targets)
    reference = F.cross_entropy(logits.transpose(1, 2), targets, label_smoothing=0.1)
    assert float(sums.sum() / counts.sum()) == pytest.approx(float(reference), rel=1e-6)


@pytest.mark.parametrize(
    ("task", "loss", "message"),
    [
        ("classification", {"name": "huber"}, "loss.name huber does not fit task classification: use cross_entropy"),
        ("regression", {"label_smoothing": 0.1}, "loss.label_smoothing does not fit loss mse of task regression"),
        ("classification", {"name": "focal", "label_smoothing": 0.1}, "loss.label_smoothing does not fit loss focal"),
        ("multilabel", {"class_weights": "inverse"}, "multilabel has loss.pos_weight"),
        ("classification", {"pos_weight": "inverse"}, "loss.pos_weight does not fit loss cross_entropy"),
        ("classification", {"gamma": 1.0}, "loss.gamma does not fit loss cross_entropy"),
        ("classification", {"beta": 0.99}, "loss.beta does not fit .* only class_weights effective uses it"),
        ("ner", {"name": "focal", "alpha": 0.25}, "loss.alpha does not fit loss focal of task ner"),
        ("classification", {"name": "focal", "alpha": 0.25, "class_weights": "inverse"}, "give one of them"),
        ("multilabel", {"name": "focal", "pos_weight": [1, 2]}, "with focal use loss.alpha"),
        ("classification", {"huber_delta": 2.0}, "loss.huber_delta does not fit"),
        ("causal", {"name": "focal"}, "task causal brings its own loss: drop the loss section"),
        ("classification", {"class_weights": [1, -2]}, "loss.class_weights"),
        ("multilabel", {"pos_weight": "effective"}, "loss.pos_weight"),
    ],
)
def test_options_that_do_not_fit_are_refused_naming_the_field(task: str, loss: dict, message: str) -> None:
    overrides = {"data.train": "a.csv", "task": task, **{f"loss.{key}": value for key, value in loss.items()}}
    with pytest.raises(UserError, match=message):
        load_config(None, overrides)


def test_regression_loss_and_loss_name_must_agree() -> None:
    with pytest.raises(UserError, match="loss.name mse and regression.loss huber disagree"):
        load_config(None, {"data.train": "a.csv", "task": "regression", "regression.loss": "huber", "loss.name": "mse"})


def test_a_saved_config_with_every_default_loads_again() -> None:
    for task, loss in [("causal", {}), ("classification", {"name": "focal", "alpha": 0.25}), ("regression", {})]:
        saved = RunConfig.model_validate({"task": task, "data": {"train": "t"}, "loss": loss}).model_dump(mode="json")
        assert RunConfig.model_validate(saved, context={"saved": True}).loss.model_dump() == saved["loss"]


TINY_RUNS = {
    "classification-focal-inverse": ("classification", {"name": "focal", "class_weights": "inverse"}),
    # Under LoRA (with the adversarial helper's training, the composition issue 34 asks for).
    "classification-focal-alpha-lora": ("classification", {"name": "focal", "alpha": 0.25}),
    "classification-smoothing-effective": (
        "classification",
        {"label_smoothing": 0.1, "class_weights": "effective", "beta": 0.99},
    ),
    "multilabel-bce-pos-weight": ("multilabel", {"pos_weight": "inverse"}),
    "multilabel-focal": ("multilabel", {"name": "focal", "alpha": 0.25}),
    "regression-huber": ("regression", {"name": "huber", "huber_delta": 0.5}),
    "ner-focal-weights": ("ner", {"name": "focal", "gamma": 1.0, "class_weights": "inverse"}),
}


def tiny_data(task: str, folder: Path) -> tuple[Path, dict]:
    if task == "multilabel":
        return write_multilabel_csv(folder / "train.csv", rows=40), {"label_column": "topics"}
    if task == "regression":
        return write_regression_csv(folder / "train.csv", rows=40), {"label_column": "score"}
    if task == "ner":
        return write_conll(folder / "train.conll", ner_sentences(40)), {}
    return tunesmith_sentiment(folder), {}


def tunesmith_sentiment(folder: Path) -> Path:
    from tests.conftest import write_sentiment_csv

    return write_sentiment_csv(folder / "train.csv", rows_per_label=20)


@pytest.mark.parametrize("case", sorted(TINY_RUNS))
def test_a_tiny_run_with_each_loss_finishes_and_reloads_to_the_same_loss(
    case: str, tiny_model: str, tmp_path: Path
) -> None:
    task, loss = TINY_RUNS[case]
    train, columns = tiny_data(task, tmp_path)
    run = tunesmith.finetune(
        {
            "task": task,
            "model": tiny_model,
            "output_dir": str(tmp_path / "run"),
            "data": {"train": str(train), "test": str(train), "validation_split": 0.0, "test_split": 0.0, **columns},
            "training": {"epochs": 1, "batch_size": 8, "learning_rate": 2e-3, "eval_each_epoch": False},
            "loss": loss,
            "strategy": "lora" if "lora" in case else "full",
        }
    )
    metrics = json.loads((run.path / "metrics.json").read_text())["test"]
    assert math.isfinite(metrics["loss"]) and metrics["loss"] > 0
    state = json.loads((run.path / "task.json").read_text())
    assert ("class_weights" in state) == ("class_weights" in loss or "alpha" in loss and task == "classification")
    assert ("pos_weight" in state) == ("pos_weight" in loss)
    # The reloaded task weighs the loss as in training: the same loss on the same file (a reloaded
    # LoRA model differs in the fifth digit; a weighting lost would change the loss by far more).
    assert tunesmith.load(run.path).evaluate(train)["loss"] == pytest.approx(metrics["loss"], rel=1e-4)
    assert get_task(run.config, state).state() == state
