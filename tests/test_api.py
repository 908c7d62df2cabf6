import logging
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

import tunesmith
from tunesmith.errors import UserError
from tunesmith.train.loop import planned_steps


def test_finetune_then_load_and_predict(tiny_config: dict) -> None:
    run = tunesmith.finetune(tiny_config)
    assert run.path == Path(tiny_config["output_dir"])
    assert 0.0 <= run.metrics["test"]["accuracy"] <= 1.0
    # What strategies are told in advance (AdaLoRA's schedule) is what the loop then does.
    figures = run.metrics["training"]
    assert figures["steps"] == planned_steps(figures["examples"]["train"], run.config.training, 1) == 24
    predictor = tunesmith.load(run.path)
    results = predictor.predict(["a superb experience", "what a dreadful one"])
    assert len(results) == 2
    for result in results:
        assert result["label"] in {"neg", "pos"}
        assert sum(result["probabilities"].values()) == pytest.approx(1.0)
    assert predictor.predict("one text")[0]["label"] in {"neg", "pos"}


def test_plain_transformers_reproduces_the_predictions(tiny_config: dict) -> None:
    run = tunesmith.finetune(tiny_config)
    texts = ["the film was great one", "our trip was awful experience", "honestly a lovely one", "x"]
    ours = tunesmith.load(run.path).predict(texts)
    model = AutoModelForSequenceClassification.from_pretrained(run.path / "model").eval()
    tokenizer = AutoTokenizer.from_pretrained(run.path / "model")
    with torch.no_grad():
        logits = model(**tokenizer(texts, padding=True, return_tensors="pt")).logits
    probabilities = torch.softmax(logits, dim=-1)
    for row, theirs in zip(ours, probabilities, strict=True):
        assert model.config.id2label[int(theirs.argmax())] == row["label"]
        assert [row["probabilities"][model.config.id2label[i]] for i in range(2)] == pytest.approx(
            theirs.tolist(), abs=1e-5
        )


def test_bad_metric_for_best_is_caught_before_training(tiny_config: dict) -> None:
    tiny_config["training"]["metric_for_best"] = "acuracy"
    with pytest.raises(UserError, match="not a classification metric"):
        tunesmith.finetune(tiny_config)
    assert not Path(tiny_config["output_dir"]).exists()


def test_failed_run_is_marked_failed(tiny_config: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from tunesmith.stages import train

    def explode(*args, **kwargs):
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(train, "fit", explode)
    with pytest.raises(RuntimeError):
        tunesmith.finetune(tiny_config)
    status = json.loads((Path(tiny_config["output_dir"]) / "status.json").read_text())
    assert status == {**status, "status": "failed", "error": "simulated crash"}
    assert not (Path(tiny_config["output_dir"]) / "metrics.json").exists()


def task_config(tiny_model: str, tmp_path: Path, task: str) -> dict:
    """A tiny-model config for each task on synthetic, learnable data."""
    from tests.conftest import ner_sentences, write_conll, write_multilabel_csv, write_regression_csv

    training = {"epochs": 12, "batch_size": 8, "learning_rate": 3e-3, "warmup_ratio": 0.0}
    if task == "regression":
        data = {"train": str(write_regression_csv(tmp_path / "r.csv")), "label_column": "score"}
    elif task == "multilabel":
        data = {"train": str(write_multilabel_csv(tmp_path / "m.csv")), "label_column": "topics"}
    else:
        data = {
            "train": str(write_conll(tmp_path / "train.conll", ner_sentences(80))),
            "validation": str(write_conll(tmp_path / "dev.conll", ner_sentences(16, seed=1))),
            "test": str(write_conll(tmp_path / "test.conll", ner_sentences(16, seed=2))),
        }
    return {"model": tiny_model, "task": task, "output_dir": str(tmp_path / task), "data": data, "training": training}


def test_regression_learns_and_predicts_values(tiny_model: str, tmp_path: Path) -> None:
    run = tunesmith.finetune(task_config(tiny_model, tmp_path, "regression"))
    assert run.metrics["test"]["pearson"] > 0.8, run.metrics["test"]
    results = tunesmith.load(run.path).predict(["great superb lovely", "awful terrible boring"])
    assert results[0]["value"] > results[1]["value"] + 1.0


def test_multilabel_learns_and_predicts_label_sets(tiny_model: str, tmp_path: Path) -> None:
    cfg = task_config(tiny_model, tmp_path, "multilabel")
    cfg["multilabel"] = {"tune_thresholds": True}
    # At 3e-3 the random tiny model's sigmoid outputs stall near the label frequencies.
    cfg["training"].update(epochs=20, learning_rate=1e-3)
    run = tunesmith.finetune(cfg)
    assert run.metrics["test"]["f1_micro"] > 0.8, run.metrics["test"]
    assert set(run.metrics["test"]["thresholds"]) == {"food", "music", "sport"}
    result = tunesmith.load(run.path).predict(["we talked football and piano today"])[0]
    assert set(result["labels"]) == {"music", "sport"}
    assert set(result["probabilities"]) == {"food", "music", "sport"}


def test_ner_learns_and_returns_entity_spans(tiny_model: str, tmp_path: Path) -> None:
    from transformers import AutoModelForTokenClassification

    run = tunesmith.finetune(task_config(tiny_model, tmp_path, "ner"))
    assert run.metrics["test"]["f1"] > 0.9, run.metrics["test"]
    assert set(run.metrics["test"]["per_class"]) == {"LOC", "PER"}
    text = "then mary left new york"
    entities = tunesmith.load(run.path).predict([text])[0]["entities"]
    assert [(e["text"], e["type"]) for e in entities] == [("mary", "PER"), ("new york", "LOC")]
    assert all(text[e["start"] : e["end"]] == e["text"] for e in entities)
    # Plain transformers tags the same words from the saved folder alone.
    model = AutoModelForTokenClassification.from_pretrained(run.path / "model").eval()
    tokenizer = AutoTokenizer.from_pretrained(run.path / "model")
    with torch.no_grad():
        tags = model(**tokenizer(text, return_tensors="pt")).logits.argmax(-1)[0].tolist()
    assert [model.config.id2label[t] for t in tags[1:-1]] == ["O", "B-PER", "O", "B-LOC", "I-LOC"]


def test_ner_with_document_context_scores_only_the_sentences_and_evaluates_alike(
    tiny_model: str, tmp_path: Path
) -> None:
    cfg = task_config(tiny_model, tmp_path, "ner")
    cfg["ner"] = {"context_words": 6}
    cfg["training"]["max_length"] = 24  # room for the sentence and some, not all, of its 12 context words
    run = tunesmith.finetune(cfg)
    test = run.metrics["test"]
    assert test["f1"] > 0.9, test
    # 16 test sentences, one person and one place each: no entity of the context is scored.
    assert {name: row["support"] for name, row in test["per_class"].items()} == {"LOC": 16, "PER": 16}
    assert run.metrics["training"]["truncated"] == {"train": 0, "validation": 0, "test": 0}
    again = tunesmith.load(run.path).evaluate(Path(cfg["data"]["test"]))
    assert again["per_class"] == test["per_class"] and again["f1"] == test["f1"]


def case_only_sentences(count: int, seed: int) -> list[tuple[list[str], list[str]]]:
    """Three names a sentence, one capitalised and tagged PER: only the case tells which."""
    import random

    rng = random.Random(seed)
    names = ["rose", "hope", "bill", "grace", "mark", "will", "jack", "faith", "dawn", "victor"]
    sentences = []
    for _ in range(count):
        chosen = rng.sample(names, 3)
        person = rng.randrange(3)
        words = [name.capitalize() if index == person else name for index, name in enumerate(chosen)]
        tags = ["B-PER" if index == person else "O" for index in range(3)]
        sentences.append(([words[0], "saw", words[1], "and", words[2]], [tags[0], "O", tags[1], "O", tags[2]]))
    return sentences


def test_word_case_lets_an_uncased_backbone_tell_names_by_their_capitals(tiny_model: str, tmp_path: Path) -> None:
    from tests.conftest import write_conll

    cfg = task_config(tiny_model, tmp_path, "ner")
    for split, count, seed in [("train", 96, 0), ("validation", 16, 1), ("test", 32, 2)]:
        cfg["data"][split] = str(write_conll(tmp_path / f"{split}.conll", case_only_sentences(count, seed)))
    # The tokenizer lower-cases: without the case types, the three names are the same to the model.
    blind = tunesmith.finetune({**cfg, "output_dir": str(tmp_path / "blind")})
    assert blind.metrics["test"]["f1"] < 0.6, blind.metrics["test"]
    cased = tunesmith.finetune({**cfg, "ner": {"word_case": True}})
    assert cased.metrics["test"]["f1"] > 0.9, cased.metrics["test"]
    text = "faith saw Dawn and victor"
    entities = tunesmith.load(cased.path).predict([text])[0]["entities"]
    assert [(e["text"], e["type"], e["start"]) for e in entities] == [("Dawn", "PER", 10)]


def test_word_case_under_frozen_embeddings_is_reported(
    tiny_model: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = task_config(tiny_model, tmp_path, "ner")
    cfg["training"]["epochs"] = 1
    cfg.update(ner={"word_case": True}, strategy="freeze", freeze={"embeddings": True, "bottom_layers": 0})
    with caplog.at_level(logging.WARNING, logger="tunesmith.tasks.ner"):
        tunesmith.finetune(cfg)
    assert "strategy freeze freezes the token-type embeddings" in caplog.text
    caplog.clear()
    cfg.update(freeze={"embeddings": False, "bottom_layers": 1}, output_dir=str(tmp_path / "trained"))
    with caplog.at_level(logging.WARNING, logger="tunesmith.tasks.ner"):
        tunesmith.finetune(cfg)
    assert "token-type" not in caplog.text


def test_word_case_on_a_backbone_without_token_types_fails_before_the_run_folder(tmp_path: Path) -> None:
    from transformers import DistilBertConfig, DistilBertModel

    from tests.conftest import ner_sentences, write_conll
    from tunesmith.models.backbones import resolve

    backbone = tmp_path / "distilbert"
    DistilBertModel(DistilBertConfig(vocab_size=30522, dim=32, n_layers=1, n_heads=2, hidden_dim=64)).save_pretrained(
        backbone
    )
    AutoTokenizer.from_pretrained(resolve("minilm")).save_pretrained(backbone)
    cfg = {
        "task": "ner",
        "model": str(backbone),
        "output_dir": str(tmp_path / "run"),
        "data": {"train": str(write_conll(tmp_path / "train.conll", ner_sentences(8)))},
        "ner": {"word_case": True},
    }
    with pytest.raises(UserError, match="distilbert models have no token-type embeddings.*ner.word_case: false"):
        tunesmith.finetune(cfg)
    assert not (tmp_path / "run").exists()


def test_a_run_killed_after_its_last_checkpoint_resumes_to_the_same_result(tiny_config: dict) -> None:
    import json

    tiny_config["training"]["keep_checkpoints"] = True
    first = tunesmith.finetune(tiny_config)
    assert [p.name for p in (first.path / "checkpoints").iterdir()]
    # What kill -9 during the final evaluation leaves: checkpoints, status "running", no metrics.
    (first.path / "metrics.json").unlink()
    (first.path / "status.json").write_text(json.dumps({"status": "running"}))

    changed = {**tiny_config, "training": {**tiny_config["training"], "epochs": 4}}
    with pytest.raises(UserError, match=r"other settings \(training.epochs: 3 then, 4 now\).*--overwrite"):
        tunesmith.finetune(changed)
    again = tunesmith.finetune(tiny_config)
    assert again.metrics["test"] == first.metrics["test"]
    assert again.metrics["validation"] == first.metrics["validation"]
    assert json.loads((first.path / "status.json").read_text())["status"] == "finished"


def test_disk_full_when_saving_the_model_keeps_the_checkpoints_to_resume_from(
    tiny_config: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import json

    from transformers import PreTrainedModel

    real_save = PreTrainedModel.save_pretrained

    def full_disk(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(PreTrainedModel, "save_pretrained", full_disk)
    with pytest.raises(UserError, match=r"Could not write .*model \(No space left on device\)"):
        tunesmith.finetune(tiny_config)
    run_dir = Path(tiny_config["output_dir"])
    assert json.loads((run_dir / "status.json").read_text())["status"] == "failed"
    assert not (run_dir / "model").exists() and not (run_dir / ".model.tmp").exists()
    assert list((run_dir / "checkpoints").glob("step-*"))

    monkeypatch.setattr(PreTrainedModel, "save_pretrained", real_save)
    run = tunesmith.finetune(tiny_config)  # space freed: the same command resumes and finishes
    assert run.metrics["training"]["steps"] == 3 * 8 and (run_dir / "model" / "model.safetensors").is_file()


@pytest.mark.slow  # torch.compile takes most of a minute
def test_compiled_model_trains_like_the_eager_one_and_saves_plain_weights(tiny_config: dict, tmp_path: Path) -> None:
    import json

    tiny_config["training"]["epochs"] = 1
    tiny_config["output_dir"] = str(tmp_path / "eager")
    eager = tunesmith.finetune(tiny_config)
    tiny_config["training"]["compile"] = True
    tiny_config["output_dir"] = str(tmp_path / "compiled")
    compiled = tunesmith.finetune(tiny_config)

    def losses(run) -> list[float]:
        records = [json.loads(line) for line in (run.path / "history.jsonl").read_text().splitlines()]
        return [record["loss"] for record in records if "loss" in record]

    assert losses(compiled) == pytest.approx(losses(eager), abs=1e-4)
    # The compile wrapper must not leak into the saved names ("_orig_mod."): plain transformers loads it.
    from safetensors import safe_open

    with safe_open(compiled.path / "model" / "model.safetensors", "pt") as saved:
        names = set(saved.keys())
    with safe_open(eager.path / "model" / "model.safetensors", "pt") as saved:
        assert names == set(saved.keys())
    assert compiled.metrics["test"]["accuracy"] == pytest.approx(eager.metrics["test"]["accuracy"], abs=0.05)


def test_more_processes_than_gpus_is_refused_before_nccl_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    from tunesmith.train.accelerator import make_accelerator

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(UserError, match=r"2 processes .* 1 visible GPU.*at most 1 .*CUDA_VISIBLE_DEVICES="):
        make_accelerator(1)


def test_an_adapter_strategy_under_fsdp_is_refused_before_training(
    tiny_config: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tunesmith.stages.plan

    monkeypatch.setattr(tunesmith.stages.plan, "sharded", lambda accelerator: True)
    tiny_config["strategy"] = "lora"
    with pytest.raises(UserError, match="lora under FSDP is not supported.*full, freeze"):
        tunesmith.finetune(tiny_config)
    assert not Path(tiny_config["output_dir"]).exists()


def test_fsdp_without_gpus_is_reported_as_plain_data_parallelism(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from accelerate.utils import DistributedType

    from tunesmith.train.accelerator import make_accelerator

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    make_accelerator(1)
    assert "needs GPUs" not in caplog.text
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    with caplog.at_level(logging.WARNING, logger="tunesmith.train.accelerator"):
        accelerator = make_accelerator(1)
    assert accelerator.distributed_type == DistributedType.NO
    assert "FSDP needs GPUs" in caplog.text and "plain data parallelism" in caplog.text


def test_the_cpu_speedups_train_as_the_plain_model_does(
    tiny_config: dict, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import json

    def losses(run) -> list[float]:
        records = [json.loads(line) for line in (run.path / "history.jsonl").read_text().splitlines()]
        return [record["loss"] for record in records if "loss" in record]

    applied = "CPU speedups applied: first_token_layer"
    caplog.set_level(logging.DEBUG, logger="tunesmith.speedups")
    tiny_config["output_dir"] = str(tmp_path / "speedups")
    fast = tunesmith.finetune(tiny_config)
    assert applied in caplog.text
    caplog.clear()
    tiny_config["training"]["cpu_speedups"] = False
    tiny_config["output_dir"] = str(tmp_path / "full")
    full = tunesmith.finetune(tiny_config)
    assert "CPU speedups applied" not in caplog.text
    assert len(losses(fast)) >= 6
    assert losses(fast) == pytest.approx(losses(full), abs=1e-4)
    assert fast.metrics["test"]["accuracy"] == full.metrics["test"]["accuracy"]


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_the_api_quiets_the_libraries_while_it_works_and_then_restores_them(
    tiny_config: dict, tmp_path: Path, capfd: pytest.CaptureFixture
) -> None:
    from datasets.utils import are_progress_bars_disabled, enable_progress_bars
    from huggingface_hub.utils import are_progress_bars_disabled as hub_bars_off
    from huggingface_hub.utils import disable_progress_bars as hub_bars_disable
    from huggingface_hub.utils import enable_progress_bars as hub_bars_enable
    from transformers.utils import logging as hf_logging

    from tests.conftest import write_sentiment_csv

    # Everything on, as a user may have it (and whatever an earlier test's command line left behind).
    before = hf_logging.get_verbosity()
    hf_logging.set_verbosity_info()
    hf_logging.enable_progress_bar()
    enable_progress_bars()
    hub_bars_disable("tunesmith-test-group")  # one group of huggingface_hub's bars the user turned off
    heard = Records()
    logging.getLogger("transformers").addHandler(heard)
    try:
        # Data no earlier test tokenized: a cached map draws no bar, and the test could not fail.
        fresh = write_sentiment_csv(tmp_path / "fresh.csv", seed=17)
        tiny_config["data"]["train"] = str(fresh)
        run = tunesmith.finetune(tiny_config)
        predictor = tunesmith.load(run.path)
        predictor.evaluate(fresh)
        assert not [message for message in heard.messages if "LOAD REPORT" in message]
        err = capfd.readouterr().err
        assert "Tokenizing" not in err and "Map" not in err, err
        # The user's settings are back.
        assert hf_logging.get_verbosity() == logging.INFO
        assert hf_logging.is_progress_bar_enabled() and not are_progress_bars_disabled()
        assert hub_bars_off("tunesmith-test-group") and not hub_bars_off()
    finally:
        logging.getLogger("transformers").removeHandler(heard)
        hf_logging.set_verbosity(before)
        hub_bars_enable("tunesmith-test-group")
