import json
from pathlib import Path

import pytest

from tests.causal.conftest import write_jsonl
from tunesmith.causal.rows import select_rows
from tunesmith.config import RunConfig
from tunesmith.data.readers import read_table
from tunesmith.errors import UserError


def rows_of(path: Path, **causal) -> list[dict]:
    cfg = RunConfig.model_validate({"task": "causal", "data": {"train": str(path)}, "causal": causal})
    return select_rows(read_table(path), cfg).to_list()


def test_the_shape_is_told_by_the_columns(tmp_path: Path) -> None:
    pairs = rows_of(write_jsonl(tmp_path / "a.jsonl", [{"prompt": "2+2=", "completion": "4"}]))
    assert pairs == [{"prompt": "2+2=", "completion": "4", "line": 1}]
    chat = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    assert rows_of(write_jsonl(tmp_path / "b.jsonl", [{"messages": chat}]))[0]["messages"] == chat
    alpaca = rows_of(write_jsonl(tmp_path / "c.jsonl", [{"instruction": "Add", "input": "2 and 3", "output": "5"}]))
    assert alpaca[0]["messages"] == [
        {"role": "user", "content": "Add\n\n2 and 3"},
        {"role": "assistant", "content": "5"},
    ]
    text = rows_of(write_jsonl(tmp_path / "d.jsonl", [{"text": "plain words"}]), format="text")
    assert text == [{"text": "plain words", "line": 1}]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"messages": [{"role": "robot", "content": "x"}, {"role": "assistant", "content": "y"}]},
         r"line 2, column \"messages\", turn 1: unknown role 'robot'. Use one of: system, user, assistant"),
        ({"messages": [{"role": "user", "content": "x"}]}, r"line 2, .*no assistant turn"),
        ({"messages": "hello"}, r"line 2, .*expected a list of turns"),
        ({"messages": [{"role": "user"}, {"role": "assistant", "content": "y"}]}, r"turn 1: expected \{"),
    ],
)  # fmt: skip
def test_a_bad_chat_row_is_named_by_file_line_and_turn(tmp_path: Path, row: dict, message: str) -> None:
    good = {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}
    path = write_jsonl(tmp_path / "chat.jsonl", [good, row])
    with pytest.raises(UserError, match=message) as caught:
        rows_of(path)
    assert str(path) in str(caught.value)


def test_a_prompt_without_a_completion_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps({"prompt": "a", "completion": "b"}) + "\n" + json.dumps({"prompt": "c"}) + "\n")
    with pytest.raises(UserError, match=r'pairs.jsonl, line 2, column "completion": the row has no completion'):
        rows_of(path)


def test_no_usable_column_says_which_to_set(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r'no column "prompt".*data.text_column'):
        rows_of(write_jsonl(tmp_path / "x.jsonl", [{"question": "a", "answer": "b"}]))
