import os

import pytest

from tunesmith.speedups.huge_pages import VARIABLE, ask_for_huge_pages

# That torch then maps large blocks in huge pages: tests/test_init.py, in a fresh process.


@pytest.mark.parametrize(("users", "then"), [(None, "1"), ("0", "0"), ("1", "1")])
def test_huge_pages_are_asked_for_unless_the_user_set_the_variable(
    monkeypatch: pytest.MonkeyPatch, users: str | None, then: str
) -> None:
    monkeypatch.delenv(VARIABLE, raising=False)
    if users is not None:
        monkeypatch.setenv(VARIABLE, users)
    ask_for_huge_pages()
    assert os.environ[VARIABLE] == then
