import json
from pathlib import Path

import pytest

from tunesmith.errors import UserError
from tunesmith.models.backbones import check_loadable

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


def test_torch_load_is_only_ever_called_with_weights_only() -> None:
    # pickle can run code; tunesmith's own files never need it (weights are safetensors).
    for path in SRC.rglob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if "torch.load(" in line:
                assert "weights_only=True" in line, f"{path}:{number}"
            assert "trust_remote_code=True" not in line, f"{path}:{number}"
