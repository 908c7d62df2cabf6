"""Turn the configured files into train/validation/test `datasets.Dataset`s.

Each split keeps the columns `text` (and `text_pair`), `label` as read, and `line`,
the source line of every example, so that later stages can point at the exact row.
Labels are not interpreted here: that is the task's job.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunesmith.config import DataConfig
from tunesmith.data.conll import read_conll
from tunesmith.data.readers import Table, is_missing, read_table, saved_splits
from tunesmith.errors import UserError, brief, json_type

if TYPE_CHECKING:
    import datasets

# The CoNLL reader's document number of each sentence (documents start at -DOCSTART- lines).
DOCUMENT_COLUMN = "document"

# Extensions read as CoNLL columns when the task works on tokens (CoNLL-2003 ships .txt).
CONLL_SUFFIXES = {".conll", ".txt", ".bio", ".iob", ".tsv"}
# Unicode categories of characters nothing reads: control (Cc) and format (Cf: zero-width space, BOM, ...).
_INVISIBLE = {"Cc", "Cf"}
# Arrow stores integers as int64; a label beyond that is kept as its digits.
_INT64 = range(-(2**63), 2**63)


@dataclass
class LoadedData:
    splits: datasets.DatasetDict
    # The file each split came from; carved splits point at the training file.
    sources: dict[str, Path] = field(default_factory=dict)


def load_splits(
    cfg: DataConfig,
    seed: int,
    token_level: bool = False,
    context_words: int = 0,
    select: Callable[[Table], datasets.Dataset] | None = None,
) -> LoadedData:
    """Read, check and split the data; `token_level` (NER) expects token lists and tag lists.

    `context_words`: see `select_columns`. Context is taken before any shuffling, so that it
    comes from each sentence's neighbours in the file. `select`: the task's own reading of a file's
    rows (a generative task's) instead of `select_columns`.
    """
    import datasets

    files = _split_files(cfg)
    splits: dict[str, datasets.Dataset] = {}
    sources: dict[str, Path] = {}
    for split, (path, name_inside) in files.items():
        table = read_split(path, cfg, name_inside, token_level)
        splits[split] = select(table) if select else select_columns(table, cfg, token_level, context_words)
        sources[split] = path
    train = splits["train"]
    if cfg.max_train_rows is not None and cfg.max_train_rows < len(train):
        train = train.shuffle(seed=seed).select(range(cfg.max_train_rows))
    total = len(train)
    for split, fraction in (("test", cfg.test_split), ("validation", cfg.validation_split)):
        if split not in splits and fraction > 0:
            # Fractions are of the whole training file, whatever was carved before.
            train, splits[split] = carve(train, max(1, round(fraction * total)), seed)
            sources[split] = sources["train"]
    if cfg.shots_per_class is not None:
        from tunesmith.data.sampling import sample_per_class

        train = sample_per_class(train, cfg.shots_per_class, seed, sources["train"])
    splits["train"] = train
    if len(train) == 0:
        raise UserError(f"{sources['train']}: no training rows left after carving the splits.")
    return LoadedData(datasets.DatasetDict(splits), sources)


def _split_files(cfg: DataConfig) -> dict[str, tuple[Path, str]]:
    """Each split's file, and the split name to read when the file is a saved DatasetDict."""
    files = {"train": (cfg.train, "train")}
    given = {"validation": cfg.validation, "test": cfg.test}
    # A saved DatasetDict brings its own validation/test splits unless files are given.
    inside = saved_splits(cfg.train)
    aliases = {"validation": ("validation", "dev", "valid"), "test": ("test",)}
    for split, path in given.items():
        if path is not None:
            files[split] = (path, split)
            continue
        found = next((name for name in aliases[split] if name in inside), None)
        if found is not None:
            files[split] = (cfg.train, found)
    return files


def read_split(path: Path, cfg: DataConfig, name_inside: str = "train", token_level: bool = False) -> Table:
    """One file as a Table; CoNLL files get the configured text and label column names."""
    fmt = cfg.format
    if fmt == "auto" and token_level and Path(path).suffix.lower() in CONLL_SUFFIXES:
        fmt = "conll"
    if fmt != "conll":
        return read_table(path, fmt, cfg.column_names, split=name_inside)
    table = read_conll(Path(path), cfg.tag_column, cfg.strip_position_digits)
    columns = {
        DOCUMENT_COLUMN: table.columns["document"],
        cfg.text_column: table.columns["tokens"],
        cfg.label_column: table.columns["tags"],
    }
    return Table(table.path, columns, table.lines, table.unit)


def read_labelled(
    path: Path,
    cfg: DataConfig,
    token_level: bool = False,
    context_words: int = 0,
    select: Callable[[Table], datasets.Dataset] | None = None,
) -> datasets.Dataset:
    """A labelled file outside the run's splits (`evaluate --data`), read and checked with the run's columns."""
    table = read_split(path, cfg, "test", token_level)
    if select is not None:
        return select(table)
    return select_columns(table, cfg, token_level, context_words, columns_settable=False)


@dataclass
class TextsToPredict:
    """An unlabelled file's texts (and second texts), with every column of each row as read,
    so that each prediction can be written beside the row it belongs to."""

    texts: list[str]
    pairs: list[str] | None
    rows: list[dict[str, Any]]


def read_texts(path: Path, cfg: DataConfig, token_level: bool = False, column: str | None = None) -> TextsToPredict:
    """The rows of an unlabelled file, for `predict --input`: one prediction per row, in order.

    A tagger reads raw texts too, not token lists: its default column is "text". A run trained
    on pairs needs the second text of each row in its `text_pair_column`. No row is skipped:
    a blank line between rows of a CSV or TSV file is a row with an empty text, and a row
    without a text is refused, naming its line, rather than dropped (which would shift every
    later prediction onto the wrong row).
    """
    column = column or ("text" if token_level else cfg.text_column)
    table = read_table(path, cfg.format, cfg.column_names, split="test", keep_blank_rows=True)
    if len(table) == 0:
        raise UserError(f"{path}: no rows to predict for (only a header, or an empty file). Add texts.")
    if column not in table.columns:
        raise UserError(
            f'{path}: no column "{column}". Columns found: {_shown_columns(table)}. Pass --text-column NAME.'
        )
    pair_column = cfg.text_pair_column
    if pair_column and pair_column not in table.columns:
        raise UserError(
            f'{path}: no column "{pair_column}". The run was trained on sentence pairs (data.text_pair_column '
            f'"{pair_column}"), so every row needs its second text there. Columns found: {_shown_columns(table)}. '
            f'Add the column, or name the file\'s second-text column "{pair_column}".'
        )
    texts = _texts_to_predict(table, column)
    pairs = _texts_to_predict(table, pair_column) if pair_column else None
    names = list(table.columns)
    rows = [dict(zip(names, values, strict=True)) for values in zip(*table.columns.values(), strict=True)]
    return TextsToPredict(texts, pairs, rows)


def _texts_to_predict(table: Table, column: str) -> list[str]:
    """The column's texts, each a non-blank string; the first blank one is refused with a count of the others."""
    values = table.columns[column]
    blank = [
        index
        for index, value in enumerate(values)
        if is_missing(value) or (isinstance(value, str) and blank_text(value))
    ]
    if blank:
        first = values[blank[0]]
        what = "missing" if is_missing(first) else blank_text(first)
        others = ""
        if len(blank) > 1:
            shown = ", ".join(str(table.lines[index]) for index in blank[1:6]) + (", ..." if len(blank) > 6 else "")
            count = len(blank) - 1
            others = f" ({count} more {table.unit}{'s have' if count > 1 else ' has'} no text either: {shown})"
        raise UserError(
            f"{table.locate(blank[0], column)}: the text is {what}{others}. predict writes one result per row, "
            "in order, and skips none: fill the text in or remove the row."
        )
    for index, value in enumerate(values):
        if not isinstance(value, str):
            raise UserError(
                f"{table.locate(index, column)}: the text is {brief(value)}, {json_type(value)}, "
                "not a string. Write every text as a string (in JSON, in double quotes)."
            )
    return values


def check_texts(texts: Sequence[Any], name: Callable[[int], str]) -> None:
    """Refuse a text to predict for that is not a string or is blank; `name(i)` says which one it is."""
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise UserError(
                f"{name(index)} is {brief(text)} (of type {type(text).__name__}), not a string. "
                "Give every text as a string."
            )
        blank = blank_text(text)
        if blank:
            raise UserError(
                f"{name(index)} is {blank}, so the model would have nothing to read. Give it a visible text, "
                "or leave it out (one result comes back per text, in order)."
            )


def check_pairs(cfg: DataConfig, texts: Sequence[Any], pairs: Sequence[Any] | None) -> None:
    """Second texts exactly where the run was trained on pairs (its `data.text_pair_column`), one per text."""
    column = cfg.text_pair_column
    if pairs is not None and not column:
        raise UserError(
            "This run was trained on single texts (its config.yaml sets no data.text_pair_column), so a second "
            "text would be read as a sentence pair, which the model never saw. Predict without --text-pair "
            "(text_pairs in Python), or train a sentence-pair run with data.text_pair_column."
        )
    if pairs is None and column:
        raise UserError(
            f'This run was trained on sentence pairs (data.text_pair_column "{column}"), so every text needs '
            "its second text: give one --text-pair per --text (text_pairs in Python), or, with --input, "
            f'a column "{column}".'
        )
    if pairs is not None and len(pairs) != len(texts):
        raise UserError(f"{len(texts)} texts but {len(pairs)} second texts: give one pair per text.")


def blank_text(text: str) -> str | None:
    """How a text that gives a model nothing to read is blank ("empty", or "only invisible characters
    (U+200B ZERO WIDTH SPACE)"), or None for a text with a visible character.

    Invisible: whitespace, control characters and format characters (zero-width spaces and joiners,
    byte-order marks, soft hyphens), which tokenizers drop.
    """
    stripped = text.strip()
    if not stripped:
        return "empty"
    if unicodedata.category(stripped[0]) not in _INVISIBLE:  # the common case: no need to look further
        return None
    hidden = sorted({char for char in stripped if not char.isspace()})
    if any(unicodedata.category(char) not in _INVISIBLE for char in hidden):
        return None
    names = ", ".join(f"U+{ord(char):04X} {unicodedata.name(char, 'control character')}" for char in hidden[:3])
    return f"only invisible characters ({names}{', ...' if len(hidden) > 3 else ''})"


def select_columns(
    table: Table,
    cfg: DataConfig,
    token_level: bool = False,
    context_words: int = 0,
    columns_settable: bool = True,
) -> datasets.Dataset:
    """The columns training reads: text (and text_pair), label, line.

    `columns_settable` False: the column names are a trained run's, so a missing column is
    the file's to rename, not a setting to change.

    With `context_words` (token level only; ignored otherwise), also context_left and context_right: up to that
    many words of the neighbouring sentences of the same document on each side (a file that
    marks no documents is one document), for the tagger to read and not to tag.
    """
    # An empty file has no columns either; "no rows" is the problem to report, not a missing column.
    if len(table) == 0:
        raise UserError(f"{table.path}: no data rows (only a header, or an empty file). Add examples.")
    wanted = {"text": cfg.text_column, "label": cfg.label_column}
    if cfg.text_pair_column:
        wanted["text_pair"] = cfg.text_pair_column
    for key, column in wanted.items():
        if column not in table.columns:
            raise UserError(_missing_column_message(table, column, key, columns_settable))
    texts = _token_lists(table, cfg.text_column) if token_level else _texts(table, cfg.text_column)
    columns: dict[str, list[Any]] = {"text": texts}
    if cfg.text_pair_column:
        columns["text_pair"] = _texts(table, cfg.text_pair_column)
    columns["label"] = _tag_lists(table, cfg.label_column) if token_level else _labels(table, cfg.label_column)
    columns["line"] = table.lines
    if token_level and context_words:
        documents = table.columns.get(DOCUMENT_COLUMN) or [0] * len(texts)
        columns["context_left"], columns["context_right"] = neighbour_words(texts, documents, context_words)
    # Imported here: `predict --input` reads a file through this module and needs neither.
    import datasets
    import pyarrow as pa

    try:
        return datasets.Dataset.from_dict(columns)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        # The checks above should leave nothing Arrow refuses; this keeps a surprise from becoming a traceback.
        raise UserError(
            f'{table.path}: the values of column "{cfg.label_column}" cannot be stored together ({exc}). '
            "Write every label the same way: a name, a whole number, or a list of them."
        ) from None


def neighbour_words(
    sentences: list[list[str]], documents: list[Any], limit: int
) -> tuple[list[list[str]], list[list[str]]]:
    """For each sentence, the last `limit` words before it and the first `limit` after it, in its document."""
    left, right = [], []
    for index, document in enumerate(documents):
        before: list[str] = []
        for previous in range(index - 1, -1, -1):
            if len(before) >= limit or documents[previous] != document:
                break
            before[:0] = sentences[previous]
        after: list[str] = []
        for following in range(index + 1, len(sentences)):
            if len(after) >= limit or documents[following] != document:
                break
            after.extend(sentences[following])
        left.append(before[-limit:])
        right.append(after[:limit])
    return left, right


def _shown_columns(table: Table, limit: int = 20) -> str:
    """The first `limit` column names, each cut short: a wide or garbled header must not flood the message."""
    found = list(table.columns)
    return ", ".join([brief(name) for name in found[:limit]] + (["..."] if len(found) > limit else [])) or "none"


def _missing_column_message(table: Table, column: str, key: str, settable: bool = True) -> str:
    found = list(table.columns)
    setting = {"text": "text_column", "label": "label_column", "text_pair": "text_pair_column"}[key]
    if settable:
        fix = f"Set data.{setting} (or --{setting.replace('_', '-')}) to one of them"
    else:
        fix = f'The run was trained reading this column: name the file\'s column "{column}"'
    message = f'{table.path}: no column "{column}" (data.{setting}). Columns found: {_shown_columns(table)}. {fix}'
    if len(found) == 1 and ("\t" in found[0] or "," in found[0]):
        message += "; the header holds a delimiter, so the file may be TSV read as CSV or vice versa"
        message += " (set data.format)" if settable else " (give it the extension of its delimiter)"
    elif any(str(name).startswith("\ufeff") for name in found):
        # utf-8-sig removes one byte-order mark; a second one (files joined with `cat`) stays in the name.
        message += (
            "; a column name starts with an invisible byte-order mark (U+FEFF), as when files saved with "
            "one are joined: remove it from the header line"
        )
    elif table.unit == "line" and settable:
        message += ", or give data.column_names if the file has no header line"
    return message + "."


def _texts(table: Table, column: str) -> list[str]:
    values = table.columns[column]
    for index, value in enumerate(values):
        if is_missing(value) or (isinstance(value, str) and blank_text(value)):
            shown = "missing" if is_missing(value) else blank_text(value)
            raise UserError(
                f"{table.locate(index, column)}: the text is {shown}. "
                "Every example needs a non-empty text: fill it in or remove the row."
            )
        if not isinstance(value, str):
            raise UserError(
                f"{table.locate(index, column)}: the text is {brief(value)}, {json_type(value)}, "
                "not a string. Write every text as a string (in JSON, in double quotes)."
            )
    return values


def _token_lists(table: Table, column: str) -> list[list[str]]:
    values = table.columns[column]
    for index, value in enumerate(values):
        if not isinstance(value, list) or not all(isinstance(token, str) for token in value):
            raise UserError(
                f"{table.locate(index, column)}: expected a list of tokens (strings), got "
                f"{json_type(value)}. Token classification reads CoNLL files or JSONL rows like "
                '{"tokens": ["EU", "rejects"], "tags": ["B-ORG", "O"]}.'
            )
        if not value:
            raise UserError(
                f"{table.locate(index, column)}: an empty sentence (no tokens). Remove the row or add its tokens."
            )
        for position, token in enumerate(value):
            if not token.strip():
                raise UserError(
                    f"{table.locate(index, column)}: token {position + 1} is empty or whitespace. "
                    "Every token needs at least one visible character."
                )
    return values


def _tag_lists(table: Table, column: str) -> list[list[str]]:
    values = table.columns[column]
    for index, value in enumerate(values):
        odd = [tag for tag in value if not isinstance(tag, str)] if isinstance(value, list) else []
        if not isinstance(value, list) or odd:
            shown = f"a list holding {json_type(odd[0])} ({brief(odd[0])})" if odd else json_type(value)
            raise UserError(
                f"{table.locate(index, column)}: expected a list of tags (strings), got {shown}. "
                'Token classification reads CoNLL files or JSONL rows like {"tokens": ["EU", "rejects"], '
                '"tags": ["B-ORG", "O"]}.'
            )
    return values


def _labels(table: Table, column: str) -> list[Any]:
    """The labels as read, checked to be values or flat lists of values, in types Arrow can store."""
    values = table.columns[column]
    for index, value in enumerate(values):
        if is_missing(value) or _blank(value):
            raise UserError(f"{table.locate(index, column)}: the label is missing. Label every row or remove it.")
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, (dict, list)) or item is None:
                inside = " inside the list" if isinstance(value, list) else ""
                raise UserError(
                    f"{table.locate(index, column)}: the label holds {json_type(item)}{inside}. A label is a name "
                    'or a whole number, or, for multi-label, a list of them (["joy", "anger"]).'
                )
    lists = [index for index, value in enumerate(values) if isinstance(value, list)]
    if lists and len(lists) < len(values):
        single = next(index for index, value in enumerate(values) if not isinstance(value, list))
        first, later = sorted((lists[0], single))
        kinds = ("a single value", "a list") if later == lists[0] else ("a list", "a single value")
        raise UserError(
            f"{table.locate(later, column)}: this label is {kinds[1]}, but the one on {table.unit} "
            f"{table.lines[first]} is {kinds[0]}. Write every row's labels the same way."
        )
    # Arrow needs one type per column (and per list item); labels are interpreted by the task later.
    if lists:
        if _mixed([item for value in values for item in value]):
            return [[str(item) for item in value] for value in values]
        return values
    if _mixed(values):
        return [str(v) for v in values]
    return values


def _mixed(values: list[Any]) -> bool:
    """Whether Arrow cannot store these scalars as they are: several types, or integers beyond int64."""
    kinds = {type(v) for v in values}
    return len(kinds) > 1 or (int in kinds and any(v not in _INT64 for v in values))


def _blank(value: Any) -> bool:
    return (isinstance(value, str) and not value.strip()) or (isinstance(value, list) and not value)


def carve(train: datasets.Dataset, size: int, seed: int) -> tuple[datasets.Dataset, datasets.Dataset]:
    """Split off `size` rows of train, stratified by label when every label has two examples."""
    # Token-level and multi-label targets rarely repeat exactly, so these fall back to a plain shuffle.
    # A generative task's rows have no label: a plain shuffle.
    labels = (
        [str(label) for label in train["label"]] if "label" in train.column_names else ["" for _ in range(len(train))]
    )
    indices = list(range(len(train)))
    if size >= len(indices):
        rows = "1 training row" if len(indices) == 1 else f"{len(indices)} training rows"
        raise UserError(
            f"Only {rows} left: too few to carve a split of {size} {'row' if size == 1 else 'rows'}. "
            "Add data, give validation/test files, or set data.validation_split / data.test_split to 0."
        )
    counts: dict[str, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    stratify = labels if len(counts) > 1 and min(counts.values()) >= 2 and size >= len(counts) else None
    # Imported on first use: scikit-learn adds 18 MB to every process, training or not.
    from sklearn.model_selection import train_test_split

    keep, held = train_test_split(indices, test_size=size, random_state=seed, stratify=stratify)
    return train.select(sorted(keep)), train.select(sorted(held))
