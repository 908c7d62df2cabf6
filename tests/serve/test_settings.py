"""`tunesmith serve`'s flags: a taken port, a missing or empty key file, bad numbers: exit 2 before the model loads."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tunesmith.cli import main
from tunesmith.errors import UserError
from tunesmith.serve.settings import API_KEY_ENV, bind, read_api_key


def test_a_port_in_use_exits_2_naming_it(trained_run: Path, capsys: pytest.CaptureFixture) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", str(trained_run), "--port", str(port)]) == 2
    error = capsys.readouterr().err
    assert f"127.0.0.1:{port}" in error and "--port" in error


def test_a_missing_or_empty_key_file_exits_2(trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["serve", str(trained_run), "--port", "0", "--api-key-file", str(tmp_path / "absent.txt")]) == 2
    assert "absent.txt does not exist" in capsys.readouterr().err
    (tmp_path / "empty.txt").write_text("\n")
    assert main(["serve", str(trained_run), "--port", "0", "--api-key-file", str(tmp_path / "empty.txt")]) == 2
    assert "is empty" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--max-batch", "--max-queue", "--max-texts", "--max-chars", "--threads"])
def test_numbers_below_one_exit_2(trained_run: Path, flag: str, capsys: pytest.CaptureFixture) -> None:
    assert main(["serve", str(trained_run), "--port", "0", flag, "0"]) == 2
    assert flag in capsys.readouterr().err


def test_the_key_comes_from_its_file_first_line_else_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "key.txt"
    key_file.write_text("from-file  \nsecond line\n")
    monkeypatch.setenv(API_KEY_ENV, "from-env")
    assert read_api_key(str(key_file)) == "from-file"
    assert read_api_key(None) == "from-env"
    monkeypatch.delenv(API_KEY_ENV)
    assert read_api_key(None) is None


def test_bind_listens_nowhere_but_where_asked() -> None:
    sock = bind("127.0.0.1", 0)
    try:
        assert sock.getsockname()[0] == "127.0.0.1"
    finally:
        sock.close()
    with pytest.raises(UserError, match="--port 70000"):
        bind("127.0.0.1", 70000)
