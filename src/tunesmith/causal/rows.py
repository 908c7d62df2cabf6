"""The rows of a data file as supervised examples for a causal model, checked.

Three shapes, told apart by the columns (or named by `causal.format`):
- prompt_completion: a prompt and the completion to learn (columns data.text_column and data.label_column,
  "prompt" and "completion" by default); or instruction / input / output columns, read as a user turn
  (the instruction, then the input) and the assistant's answer;
- messages: a chat, a list of {"role", "content"} turns (data.text_column, or a column "messages");
- text: plain text (data.text_column), every token learnt, for continued pretraining.
Every problem names the file, line and field, and the fix.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tunesmith.errors import UserError, brief, json_type

if TYPE_CHECKING:
    import datasets

    from tunesmith.config import RunConfig
    from tunesmith.data.readers import Table

ROLES = ("system", "user", "assistant")
FORMATS = ("prompt_completion", "messages", "text")
INSTRUCTION_COLUMNS = ("instruction", "input", "output")


def detect_format(table: Table, cfg: RunConfig) -> tuple[str, dict[str, str]]:
    """The rows' shape ("instruction" or one of FORMATS) and the columns it reads, from causal.format or
    the columns the file has."""
    data, wanted = cfg.data, cfg.causal.format
    columns = set(table.columns)
    text, label = data.text_column, data.label_column
    if text not in columns:
        # The usual names, where the configured (or default "prompt") column is not there.
        text = next((name for name in ("messages", "text") if name in columns and wanted in ("auto", name)), text)
    if wanted == "auto":
        if text in columns and any(isinstance(value, list) for value in table.columns[text][:50]):
            wanted = "messages"
        elif text in columns:
            wanted = "prompt_completion" if label in columns else "text"
        elif {"instruction", "output"} <= columns:
            wanted = "instruction"
        else:
            shown = ", ".join(sorted(columns)[:12])
            raise UserError(
                f'{table.path}: no column "{text}" (nor "messages", "text", or "instruction" and "output"); the '
                f"file has: {shown}. Name the prompt column with data.text_column and the completion column with "
                "data.label_column (or the chat or text column with data.text_column), or set causal.format."
            )
    if wanted == "instruction":
        return wanted, {"instruction": "instruction", "input": "input", "output": "output"}
    if wanted == "prompt_completion":
        return wanted, {"prompt": text, "completion": label}
    return wanted, {wanted: text}


def select_rows(table: Table, cfg: RunConfig) -> datasets.Dataset:
    """The checked examples of one file: prompt and completion, messages, or text; and each row's line."""
    import datasets

    if len(table) == 0:
        raise UserError(f"{table.path}: no data rows (only a header, or an empty file). Add examples.")
    kind, columns = detect_format(table, cfg)
    for column in columns.values():
        if column not in table.columns and column != "input":
            raise UserError(
                f'{table.path}: no column "{column}", which causal.format {kind} reads. The file has: '
                f"{', '.join(sorted(table.columns)[:12])}. Rename it, or set data.text_column / data.label_column."
            )
    if kind == "instruction":
        # A user turn and the answer: instructions are chats of one exchange, rendered by the chat template.
        rows = {"messages": []}
        inputs = table.columns.get("input") or [None] * len(table)
        for index, (instruction, extra, output) in enumerate(
            zip(table.columns["instruction"], inputs, table.columns["output"], strict=True)
        ):
            instruction = _string(table, index, "instruction", instruction)
            extra = "" if extra is None else _string(table, index, "input", extra, empty_ok=True)
            question = instruction + (f"\n\n{extra}" if extra.strip() else "")
            answer = _string(table, index, "output", output)
            rows["messages"].append([{"role": "user", "content": question}, {"role": "assistant", "content": answer}])
    elif kind == "prompt_completion":
        rows = {
            "prompt": _checked(table, columns["prompt"], lambda i, v: _string(table, i, columns["prompt"], v, True)),
            "completion": _checked(
                table, columns["completion"], lambda i, v: _string(table, i, columns["completion"], v)
            ),
        }
    elif kind == "messages":
        rows = {
            "messages": _checked(table, columns["messages"], lambda i, v: _messages(table, i, columns["messages"], v))
        }
    else:
        rows = {"text": _checked(table, columns["text"], lambda i, v: _string(table, i, columns["text"], v))}
    rows["line"] = table.lines
    return datasets.Dataset.from_dict(rows)


def _checked(table: Table, column: str, check: Callable[[int, Any], Any]) -> list[Any]:
    return [check(index, value) for index, value in enumerate(table.columns[column])]


def _string(table: Table, index: int, column: str, value: Any, empty_ok: bool = False) -> str:
    if value is None:
        what = "a completion" if column in ("completion", "output") else "a value"
        raise UserError(
            f"{table.locate(index, column)}: the row has no {column}; every example needs {what}. "
            "Fill it in or remove the row."
        )
    if not isinstance(value, str):
        raise UserError(f"{table.locate(index, column)}: expected text, got {json_type(value)} {brief(value)}.")
    if not empty_ok and not value.strip():
        raise UserError(f"{table.locate(index, column)}: the {column} is empty. Fill it in or remove the row.")
    return value


def _messages(table: Table, index: int, column: str, value: Any) -> list[dict[str, str]]:
    place = table.locate(index, column)
    if not isinstance(value, list) or not value:
        raise UserError(
            f'{place}: expected a list of turns like [{{"role": "user", "content": ...}}, '
            f'{{"role": "assistant", "content": ...}}], got {json_type(value)} {brief(value)}.'
        )
    turns = []
    for number, turn in enumerate(value, start=1):
        if not isinstance(turn, dict) or not isinstance(turn.get("role"), str) or "content" not in turn:
            raise UserError(f'{place}, turn {number}: expected {{"role": ..., "content": ...}}, got {brief(turn)}.')
        role, content = turn["role"], turn["content"]
        if role not in ROLES:
            raise UserError(f"{place}, turn {number}: unknown role {brief(role)}. Use one of: {', '.join(ROLES)}.")
        if not isinstance(content, str):
            raise UserError(f"{place}, turn {number}: the content must be text, got {json_type(content)}.")
        turns.append({"role": role, "content": content})
    if not any(turn["role"] == "assistant" for turn in turns):
        raise UserError(
            f"{place}: the conversation has no assistant turn, so nothing in it would be learnt. Add the "
            "assistant's answer, or remove the row."
        )
    return turns
