import ast
import json
import re
import shutil
from pathlib import Path

import pytest
from transformers import BertConfig, DebertaV2Config, RobertaConfig

from tunesmith.errors import UserError
from tunesmith.models import backbones
from tunesmith.models.backbones import check_loadable, position_limit

SRC = Path(__file__).resolve().parents[2] / "src" / "tunesmith"


def test_a_model_that_ships_its_own_code_is_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    (tmp_path / "config.json").write_text(
        json.dumps({"model_type": "evil", "auto_map": {"AutoConfig": "evil.EvilConfig"}})
    )
    (tmp_path / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('pwned')\n")
    with pytest.raises(UserError, match="ships its own Python code.*does not run"):
        check_loadable(str(tmp_path))
    assert not marker.exists()


def test_a_backbone_folder_with_cut_short_weights_is_refused_before_any_work(tiny_model: str, tmp_path: Path) -> None:
    folder = Path(shutil.copytree(tiny_model, tmp_path / "backbone"))
    assert check_loadable(str(folder)) == str(folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:4096])
    with pytest.raises(UserError, match=f"{re.escape(str(weights))} is not a whole safetensors file"):
        check_loadable(str(folder))


def test_a_hub_model_whose_config_names_its_own_classes_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # transformers knows model_type bert, so it would build its own BERT and ignore the model's code:
    # not the model the user named.
    config = BertConfig(auto_map={"AutoModel": "modeling_custom.CustomBert"})
    monkeypatch.setattr(backbones.AutoConfig, "from_pretrained", lambda *args, **kwargs: config)
    with pytest.raises(UserError, match="Model 'someone/custom-bert' ships its own Python code"):
        check_loadable("someone/custom-bert")
    config.auto_map = None
    assert check_loadable("someone/custom-bert") == "someone/custom-bert"


@pytest.mark.parametrize(
    ("config", "limit"),
    [
        (BertConfig(max_position_embeddings=512), 512),
        # Positions counted from after the padding index (1): two of 514 are out of reach.
        (RobertaConfig(max_position_embeddings=514, pad_token_id=1), 512),
        # Relative positions only: no limit from the position embeddings.
        (DebertaV2Config(max_position_embeddings=512, position_biased_input=False), None),
    ],
    ids=["bert", "roberta", "deberta-v2"],
)
def test_the_position_limit_is_the_longest_input_the_positions_cover(config, limit: int | None) -> None:
    assert position_limit(config) == limit


def test_torch_load_is_only_ever_called_with_weights_only() -> None:
    # pickle can run code; tunesmith's own files never need it (weights are safetensors).
    for path in SRC.rglob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if "torch.load(" in line:
                assert "weights_only=True" in line, f"{path}:{number}"
            assert "trust_remote_code=True" not in line, f"{path}:{number}"


def test_every_transformers_load_says_trust_remote_code_false() -> None:
    # Left out, the argument is None: transformers then asks on the terminal whether to run a folder's code.
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "from_pretrained":
                if getattr(node.func.value, "id", None) == "PeftModel":
                    continue  # reads an adapter's weights only; it takes no such argument
                given = {keyword.arg: keyword.value for keyword in node.keywords}
                flag = given.get("trust_remote_code")
                assert isinstance(flag, ast.Constant) and flag.value is False, f"{path}:{node.lineno}"
