from pathlib import Path

import pytest
import yaml

from tunesmith.config import RunConfig, load_config, parse_assignment, validate_config
from tunesmith.errors import UserError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_minimal_yaml_fills_every_default(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "data:\n  train: data/train.csv\n"))
    assert cfg.model == "minilm"
    assert cfg.task == "classification"
    assert cfg.data.text_column == "text" and cfg.data.label_column == "label"
    assert cfg.training.epochs == 3 and cfg.training.learning_rate == 5e-5
    assert cfg.run_dir() == Path("runs/data-train")


def test_misspelt_key_is_rejected_with_a_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, "data:\n  train: a.csv\n  text_colum: sentence\n")
    with pytest.raises(UserError) as error:
        load_config(path)
    message = str(error.value)
    assert str(path) in message
    assert 'Unknown key "data.text_colum"' in message
    assert 'Did you mean "text_column"?' in message
    assert "label_column" in message  # the valid keys are listed


def test_misspelt_top_level_section(tmp_path: Path) -> None:
    with pytest.raises(UserError, match='Did you mean "training"'):
        load_config(write(tmp_path, "data: {train: a.csv}\ntrainig: {epochs: 2}\n"))


def test_wrong_type_names_the_field_and_value(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r'"training.epochs".*\'three\''):
        load_config(write(tmp_path, "data: {train: a.csv}\ntraining: {epochs: three}\n"))


def test_missing_train_file_key(tmp_path: Path) -> None:
    with pytest.raises(UserError, match='Missing required key "data".*data.train'):
        load_config(write(tmp_path, "model: minilm\n"))
    with pytest.raises(UserError, match='Missing required key "data.train"'):
        load_config(write(tmp_path, "data: {text_column: t}\n"))


def test_broken_yaml_points_at_the_line(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"line 3"):
        load_config(write(tmp_path, "data:\n  train: a.csv\n  label: [unclosed\n"))


def test_yaml_that_is_not_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="mapping of keys"):
        load_config(write(tmp_path, "- just\n- a list\n"))


def test_flags_then_assignments_override_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "data: {train: a.csv}\ntraining: {epochs: 5, learning_rate: 1.0e-4}\n")
    cfg = load_config(path, {"training.epochs": 2}, ["training.learning_rate=3e-5", "data.text_column=sentence"])
    assert cfg.training.epochs == 2
    assert cfg.training.learning_rate == pytest.approx(3e-5)
    assert cfg.data.text_column == "sentence"


def test_a_bare_no_turns_mixed_precision_off_in_files_and_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, "data: {train: a.csv}\ntraining: {mixed_precision: no}\n")
    assert load_config(path).training.mixed_precision == "no"
    assert load_config(None, {"data.train": "a.csv"}, ["training.mixed_precision=no"]).training.mixed_precision == "no"
    with pytest.raises(UserError, match="mixed_precision"):
        load_config(None, {"data.train": "a.csv"}, ["training.mixed_precision=yes"])


def test_assignment_without_equals_is_an_error() -> None:
    with pytest.raises(UserError, match="key=value"):
        parse_assignment("=3")


def test_split_fractions_must_leave_training_data() -> None:
    with pytest.raises(UserError, match="validation_split \\+ test_split"):
        load_config(None, {"data.train": "a.csv", "data.validation_split": 0.5, "data.test_split": 0.5})


def test_early_stopping_needs_evaluations() -> None:
    with pytest.raises(UserError, match="early_stopping_patience needs evaluations"):
        load_config(
            None, {"data.train": "a.csv", "training.eval_each_epoch": False, "training.early_stopping_patience": 2}
        )


def test_resolved_config_has_absolute_paths_and_a_name() -> None:
    cfg = RunConfig.model_validate({"data": {"train": "sst2/train.tsv", "test": "sst2/test.tsv"}}).resolved()
    assert cfg.data.train.is_absolute() and cfg.data.test.is_absolute()
    assert cfg.name == "sst2-train"
    assert cfg.output_dir == Path("runs/sst2-train")


def test_each_strategy_brings_its_learning_rate_unless_one_is_given() -> None:
    from tunesmith.config import DEFAULT_LEARNING_RATES, StrategyName

    assert set(DEFAULT_LEARNING_RATES) == set(StrategyName.__args__)
    lora = validate_config({"data": {"train": "t.csv"}, "strategy": "lora"}, "x")
    assert lora.training.learning_rate == DEFAULT_LEARNING_RATES["lora"] == 5e-4
    given = validate_config({"data": {"train": "t.csv"}, "strategy": "lora", "training": {"learning_rate": 1e-5}}, "x")
    assert given.training.learning_rate == 1e-5
    assert validate_config({"data": {"train": "t.csv"}}, "x").training.learning_rate == 5e-5
    # The saved config holds the rate used, so reloading it gives the same run.
    resolved = lora.resolved().model_dump(mode="json")
    assert validate_config(resolved, "x").training.learning_rate == 5e-4


def test_misspelt_strategy_lists_the_choices() -> None:
    with pytest.raises(UserError, match=r'"strategy": Input should be .*\'lora\'') as caught:
        validate_config({"data": {"train": "t.csv"}, "strategy": "lroa"}, "x")
    assert "bitfit" in str(caught.value)


@pytest.mark.parametrize(
    ("legacy", "speedups"),
    [
        ({"cls_only_last_layer": True, "word_dropout": True}, True),
        ({"cls_only_last_layer": False, "word_dropout": True}, False),
        ({"cls_only_last_layer": True, "word_dropout": False}, False),
        ({"word_dropout": False}, False),
        ({"cls_only_last_layer": True}, True),
    ],
)
def test_an_old_run_folders_speedup_switches_map_to_cpu_speedups(tmp_path: Path, legacy: dict, speedups: bool) -> None:
    from tunesmith.runs import run_config

    # config.yaml as runs wrote it before training.cpu_speedups replaced the two switches.
    resolved = RunConfig.model_validate({"data": {"train": "train.csv"}}).model_dump(mode="json")
    del resolved["training"]["cpu_speedups"]
    resolved["training"].update(legacy)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(resolved))
    assert run_config(tmp_path).training.cpu_speedups is speedups


def test_cpu_speedups_given_with_a_legacy_switch_wins() -> None:
    training = {"cpu_speedups": True, "word_dropout": False}
    assert RunConfig.model_validate({"data": {"train": "t.csv"}, "training": training}).training.cpu_speedups


@pytest.mark.parametrize(
    ("name", "gist"),
    [
        ("../../x", "path separator"),
        ("/etc", "path separator"),
        ("a/b", "path separator"),
        ("a\\b", "path separator"),
        ("..", "names the folder above runs/"),
        (".", "names runs/ itself"),
        ("x\x00y", "control character"),
        ("x\ny", "control character"),
        ("x\x1b[2Jy", "control character"),
    ],
)
def test_run_name_with_path_parts_is_refused(name: str, gist: str) -> None:
    # As --name gives it; a config file's name: goes through the same validation.
    with pytest.raises(UserError) as error:
        load_config(None, {"data.train": "a.csv", "name": name})
    message = str(error.value)
    assert 'Invalid config in the command line: "name":' in message
    assert gist in message and "output_dir: (or --output-dir)" in message
    assert "\n" not in message and "\x00" not in message


def test_run_name_in_a_config_file_is_checked(tmp_path: Path) -> None:
    path = write(tmp_path, "name: ../../outside\ndata: {train: a.csv}\n")
    with pytest.raises(UserError, match=r"Invalid config in .*config.yaml: \"name\": .*'../../outside' holds a path"):
        load_config(path)


@pytest.mark.parametrize("name", ["sst2-lora", "my run", "résumé", "v1.2", "...", ".hidden"])
def test_plain_run_names_are_kept(name: str) -> None:
    cfg = load_config(None, {"data.train": "a.csv", "name": name})
    assert cfg.run_dir() == Path("runs") / name


def test_an_output_path_goes_in_output_dir() -> None:
    cfg = load_config(None, {"data.train": "a.csv", "name": "exp", "output_dir": "../elsewhere/exp"})
    assert cfg.run_dir() == Path("../elsewhere/exp")


def test_a_saved_config_with_an_older_unchecked_name_still_loads() -> None:
    # Run folders trained before names were checked keep working with evaluate and predict.
    raw = {"name": "team/exp", "output_dir": "runs/team/exp", "data": {"train": "a.csv"}}
    assert validate_config(raw, "config.yaml", saved=True).name == "team/exp"
    with pytest.raises(UserError, match="path separator"):
        validate_config(raw, "config.yaml")


def test_run_dir_checks_a_name_set_without_validation() -> None:
    cfg = load_config(None, {"data.train": "a.csv"}).model_copy(update={"name": "../../x"})
    with pytest.raises(UserError, match=r"Run name '../../x' holds a path separator.*output_dir"):
        cfg.run_dir()


@pytest.mark.parametrize("train", [".", ".."])
def test_a_name_taken_from_a_data_folder_is_that_folder_name(train: str) -> None:
    cfg = load_config(None, {"data.train": train})
    assert cfg.run_dir() == Path("runs") / Path(train).resolve().name
