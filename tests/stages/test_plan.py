"""The plan stage: checks only, and a resume compares settings by meaning."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tunesmith.config import RunConfig, validate_config
from tunesmith.errors import UserError
from tunesmith.stages.plan import check_same_config, plan_run


def saved_run(tmp_path: Path, **legacy: bool) -> tuple[RunConfig, Path]:
    """A config and a run folder whose config.yaml says the same, in the words of an older release."""
    cfg = RunConfig.model_validate(
        {"data": {"train": str(tmp_path / "train.csv")}, "output_dir": str(tmp_path / "run")}
    )
    saved = cfg.resolved().model_dump(mode="json")
    del saved["training"]["cpu_speedups"]
    saved["training"].update(legacy)
    cfg.run_dir().mkdir()
    (cfg.run_dir() / "config.yaml").write_text(yaml.safe_dump(saved), encoding="utf-8")
    return cfg, cfg.run_dir()


def test_a_run_saved_with_the_old_speedup_switches_resumes_with_the_same_meaning(tmp_path: Path) -> None:
    cfg, run_dir = saved_run(tmp_path, cls_only_last_layer=True, word_dropout=True)
    check_same_config(cfg, run_dir)  # the same settings, named as they were then


def test_a_changed_setting_is_still_refused(tmp_path: Path) -> None:
    cfg, run_dir = saved_run(tmp_path, cls_only_last_layer=True, word_dropout=False)
    with pytest.raises(UserError, match=r"training.cpu_speedups: False then, True now"):
        check_same_config(cfg, run_dir)


def test_an_unreadable_saved_config_is_refused(tmp_path: Path) -> None:
    cfg, run_dir = saved_run(tmp_path)
    (run_dir / "config.yaml").write_text("training: {epochs: [", encoding="utf-8")
    with pytest.raises(UserError, match="config.yaml is missing or unreadable"):
        check_same_config(cfg, run_dir)


def test_a_max_length_beyond_the_models_positions_is_refused_before_the_run_folder(tiny_config: dict) -> None:
    # The tiny BERT has 128 positions; the first batch of 129 tokens would crash the model.
    tiny_config["training"]["max_length"] = 129
    with pytest.raises(
        UserError, match=r"training.max_length 129 is longer than model .* can read: .* cover 128 tokens"
    ):
        plan_run(validate_config(tiny_config, "test"))
    assert not Path(tiny_config["output_dir"]).exists()
    tiny_config["training"]["max_length"] = 128
    assert plan_run(validate_config(tiny_config, "test")).cfg.training.max_length == 128


def test_the_default_max_length_is_cut_to_the_models_positions(tiny_config: dict) -> None:
    cfg = validate_config(tiny_config, "test")
    assert cfg.training.max_length == 256  # the default, for models with 512 positions
    assert plan_run(cfg).cfg.training.max_length == 128
