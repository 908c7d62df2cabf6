"""Read one data file into a Table of columns, remembering each row's source line.

Real benchmark files are not clean RFC 4180: GLUE's TSVs hold bare double quotes
that are text, not quoting (MRPC), while other TSVs quote the fields that contain a
quote (AG News). So TSV is read line by line and a field is unquoted only when it
is a complete, well-formed quoted field. CSV goes through the csv module.
Every problem becomes a UserError naming the file and line.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunesmith.errors import UserError, brief, json_type, where

SUFFIX_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".txt": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}

# Other delimiters a one-column header may hold when the file is not what its extension says.
_FOREIGN_DELIMITERS = {",": ("\t", ";", "|"), "\t": (",", ";", "|")}
# Longest piece of the input quoted in a message: a 5 MB header line must not become a 5 MB error.
_SHOWN = 80
# Python's csv module refuses fields over 128 KiB by default; a long document is still a text.
_CSV_FIELD_LIMIT = 2**31 - 1


@dataclass
class Table:
    """Columns of one file. `lines[i]` is where row i starts, for error messages."""

    path: Path
    columns: dict[str, list[Any]]
    lines: list[int]
    # "line" for text files, "row" for Parquet and saved datasets.
    unit: str = "line"

    def __len__(self) -> int:
        return len(self.lines)

    def locate(self, index: int, column: str | None = None) -> str:
        """'file, line N, column "x"' for row `index`."""
        if self.unit == "line":
            return where(self.path, self.lines[index], column)
        place = f"{self.path}, row {self.lines[index]}"
        return f'{place}, column "{column}"' if column else place


def detect_format(path: Path, declared: str = "auto") -> str:
    if declared != "auto":
        return declared
    if path.is_dir():
        return "arrow"
    fmt = SUFFIX_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UserError(
            f"{path}: cannot tell the format from the extension {path.suffix!r}. "
            "Use .csv, .tsv, .jsonl or .parquet, or set data.format (csv, tsv, jsonl, parquet, arrow)."
        )
    return fmt


def check_exists(path: Path) -> None:
    if not path.exists():
        raise UserError(f"{path}: file not found. Check the path (relative paths start from {Path.cwd()}).")


def read_table(
    path: Path,
    fmt: str = "auto",
    column_names: list[str] | None = None,
    split: str = "train",
    keep_blank_rows: bool = False,
) -> Table:
    """Read a file (or a `save_to_disk` folder, taking `split` from a DatasetDict).

    Blank lines of CSV and TSV files are skipped, unless `keep_blank_rows`: then a blank line
    between the header and the last row is a row of empty values, as `predict --input` needs,
    which owes every line its prediction (a one-column file's empty text is a blank line).
    """
    path = Path(path)
    check_exists(path)
    fmt = detect_format(path, fmt)
    if fmt == "arrow":
        return _read_saved_dataset(path, split)
    if path.is_dir():
        raise UserError(f"{path} is a folder; data.format {fmt} needs a file.")
    if fmt == "parquet":
        return _read_parquet(path)
    text = decode_text(path)
    if fmt == "jsonl":
        return _read_jsonl(path, text)
    delimiter = "\t" if fmt == "tsv" else ","
    return _read_delimited(path, text, delimiter, column_names, keep_blank_rows)


def decode_text(path: Path) -> str:
    """A text file's content as UTF-8 (a BOM skipped), or a UserError naming the file, line and byte."""
    data = path.read_bytes()
    check_text_bytes(path, data)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        offset = exc.start + (3 if data.startswith(b"\xef\xbb\xbf") else 0)
        line = data.count(b"\n", 0, offset) + 1
        column = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
        raise UserError(
            f"{where(path, line)}, character {column}: byte 0x{data[offset]:02x} is not valid UTF-8. "
            "Save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8 in.tsv > out.tsv`)."
        ) from None


def check_text_bytes(path: Path, data: bytes) -> None:
    """Refuse UTF-16/32 text and binary files before decoding, with a message that says which."""
    wide = wide_encoding(data)
    if wide:
        raise UserError(
            f"{path}: the file is {wide} text; tunesmith reads UTF-8. Save it as UTF-8 "
            f"(e.g. `iconv -f {wide} -t utf-8 in{path.suffix} > out{path.suffix}`)."
        )
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise UserError(
            f"{where(path, line)}: contains a NUL byte, so this looks like a binary file, "
            "not text. Export the data as UTF-8 text (CSV, TSV, JSONL or CoNLL)."
        )


def wide_encoding(data: bytes) -> str | None:
    """The name "UTF-16" or "UTF-32" when the bytes are text in one of those encodings, else None.

    Such files (Excel's "Unicode text", PowerShell redirects) are full of NUL bytes, and
    calling them binary would send the user looking for the wrong problem.
    """
    if data.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return "UTF-32"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "UTF-16"
    # Without a byte-order mark: mostly-ASCII UTF-16 has a NUL in every other byte, and only there.
    sample = data[:4096]
    half = len(sample) // 2
    if half < 8:
        return None
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    if max(even, odd) >= 0.8 * half and min(even, odd) <= 0.05 * half:
        return "UTF-16"
    return None


def _split_lines(text: str) -> list[str]:
    # Only \n separates records: str.splitlines would also split on \x0b, \x1c, \u2028 ... inside texts.
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _unquote(field: str) -> str:
    """Undo CSV quoting only where the whole field is one well-formed quoted value."""
    if len(field) >= 2 and field[0] == '"' and field[-1] == '"':
        inner = field[1:-1]
        if '"' not in inner.replace('""', ""):
            return inner.replace('""', '"')
    return field


def _read_delimited(
    path: Path, text: str, delimiter: str, column_names: list[str] | None, keep_blank_rows: bool = False
) -> Table:
    records = _tsv_records(text) if delimiter == "\t" else _csv_records(path, text)
    # Blank lines before the header and after the last row are never rows.
    while records and records[0][2]:
        records.pop(0)
    while records and records[-1][2]:
        records.pop()
    if column_names is None:
        if not records:
            raise UserError(f"{path}: the file is empty; it needs a header line and at least one row.")
        _, header, _ = records.pop(0)
        header = [name.strip() for name in header]
        _check_delimiter(path, header, delimiter)
    else:
        header = list(column_names)
    _check_header(path, header)
    columns: dict[str, list[Any]] = {name: [] for name in header}
    lines: list[int] = []
    for line, fields, blank in records:
        if blank:
            if not keep_blank_rows:
                continue
            fields = fields if len(fields) == len(header) else [""] * len(header)
        if len(fields) != len(header):
            kind = "tab" if delimiter == "\t" else "comma"
            raise UserError(
                f"{where(path, line)}: {len(fields)} fields, but the header has {len(header)} "
                f"({_brief_join(header)}). A {kind} inside a text must be quoted, "
                "or the row is missing a value."
            )
        for name, value in zip(header, fields, strict=True):
            columns[name].append(value)
        lines.append(line)
    return Table(path, columns, lines)


def _check_delimiter(path: Path, header: list[str], delimiter: str) -> None:
    """Refuse a one-column header that another delimiter would split: the file is not what its name says."""
    if len(header) != 1:
        return
    for other in _FOREIGN_DELIMITERS[delimiter]:
        if len([name for name in header[0].split(other) if name.strip()]) < 2:
            continue
        shown = brief(header[0])
        if other == "\t":
            raise UserError(
                f"{where(path, 1)}: the header {shown} is one column holding tabs, so this is a tab-separated "
                "file (TSV read as CSV). Rename it to .tsv, or set data.format to tsv (--format tsv)."
            )
        if other == ",":
            raise UserError(
                f"{where(path, 1)}: the header {shown} is one column holding commas, so this is a "
                "comma-separated file (CSV read as TSV). Rename it to .csv, or set data.format to csv (--format csv)."
            )
        raise UserError(
            f"{where(path, 1)}: the header {shown} is one column holding {other!r}, so the file is separated "
            f"by {other!r}, which tunesmith does not read. Save it with commas (.csv) or tabs (.tsv)."
        )


def _cut(text: str, limit: int = _SHOWN) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _brief_join(names: list[str]) -> str:
    return _cut(", ".join(names))


# (line number, fields, whether the line is blank)
Record = tuple[int, list[str], bool]


def _tsv_records(text: str) -> list[Record]:
    return [
        (number, [_unquote(field) for field in line.split("\t")], not line.strip())
        for number, line in enumerate(_split_lines(text), start=1)
    ]


def _csv_records(path: Path, text: str) -> list[Record]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records = []
    start = 1
    try:
        with _csv_field_limit(_CSV_FIELD_LIMIT):
            for fields in reader:
                records.append((start, fields, not any(field.strip() for field in fields)))
                start = reader.line_num + 1
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            # The reader stops at the end of the file; the culprit is the quote that opened the record.
            raise UserError(
                f"{where(path, start)}: malformed CSV: a quoted field that starts in this row is never closed, "
                "so the rest of the file would be one text. Close the quote, or double a quote that belongs "
                'to the text ("").'
            ) from None
        raise UserError(
            f"{where(path, reader.line_num)}: malformed CSV ({exc}). "
            'A field containing a quote must be quoted as a whole, with inner quotes doubled ("").'
        ) from None
    return records


@contextmanager
def _csv_field_limit(limit: int) -> Iterator[None]:
    # The limit is process-wide state of the csv module, so it is put back afterwards.
    previous = csv.field_size_limit(limit)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def _check_header(path: Path, header: list[str]) -> None:
    seen = set()
    for name in header:
        if name in seen:
            raise UserError(f"{where(path, 1)}: the header names column {name!r} twice. Rename one of them.")
        seen.add(name)


def _read_jsonl(path: Path, text: str) -> Table:
    stripped = text.lstrip()
    if stripped.startswith("["):
        return _read_json_array(path, text)
    columns: dict[str, list[Any]] = {}
    lines: list[int] = []
    for number, line in enumerate(_split_lines(text), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            _refuse_single_object(path, text)
            raise UserError(
                f"{where(path, number)}, character {exc.colno}: not valid JSON ({exc.msg}). "
                "JSONL needs one complete JSON object per line."
            ) from None
        except RecursionError:
            raise UserError(
                f"{where(path, number)}: the JSON is nested too deeply to read. Rows are flat objects."
            ) from None
        _add_record(where(path, number), record, columns, len(lines))
        lines.append(number)
    return Table(path, columns, lines)


def _refuse_single_object(path: Path, text: str) -> None:
    """A pretty-printed JSON object fails as JSONL on its first line; say what it is instead."""
    if not text.lstrip().startswith("{"):
        return
    try:
        whole = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return
    if isinstance(whole, dict):
        keys = ", ".join(f'"{_cut(str(key), 30)}"' for key in list(whole)[:5])
        raise UserError(
            f"{path}: the file holds one JSON object (keys: {keys}) spread over several lines, not one object "
            "per line (JSONL) or a JSON list of objects. Write the rows out as JSONL, or as a list "
            '[{"text": ..., "label": ...}, ...].'
        )


def _read_json_array(path: Path, text: str) -> Table:
    try:
        records = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{where(path, exc.lineno)}, character {exc.colno}: not valid JSON ({exc.msg}).") from None
    except RecursionError:
        raise UserError(f"{path}: the JSON is nested too deeply to read. Rows are flat objects.") from None
    if not isinstance(records, list):
        raise UserError(f"{path}: expected a JSON list of objects or JSONL (one object per line).")
    columns: dict[str, list[Any]] = {}
    for index, record in enumerate(records):
        _add_record(f"{path}, row {index + 1}", record, columns, index)
    return Table(path, columns, list(range(1, len(records) + 1)), unit="row")


def _add_record(place: str, record: Any, columns: dict[str, list[Any]], row: int) -> None:
    if not isinstance(record, dict):
        raise UserError(f'{place}: expected a JSON object like {{"text": ..., "label": ...}}, got {json_type(record)}.')
    for key in record.keys() - columns.keys():
        columns[key] = [None] * row  # a key first seen late is missing from earlier rows
    for key, values in columns.items():
        values.append(record.get(key))


def _read_parquet(path: Path) -> Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        columns = pq.read_table(path).to_pydict()
    except (pa.ArrowException, OSError) as exc:
        raise UserError(f"{path}: cannot read as Parquet ({exc}). Is it really a .parquet file?") from None
    rows = len(next(iter(columns.values()), []))
    return Table(path, columns, list(range(1, rows + 1)), unit="row")


def _read_saved_dataset(path: Path, split: str) -> Table:
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError, OSError) as exc:
        if path.suffix.lower() in SUFFIX_FORMATS:
            raise UserError(
                f"{path} is a folder, not a {path.suffix} file, and not one written by datasets' save_to_disk. "
                "Point data.train at the data file itself."
            ) from None
        raise UserError(
            f"{path}: not a folder written by datasets' save_to_disk ({exc}). "
            "Point data.train at such a folder or at a data file."
        ) from None
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise UserError(
                f"{path}: the saved DatasetDict has no {split!r} split (it has: {', '.join(loaded)}). "
                "Pass that split as a separate file or save it under this name."
            )
        loaded = loaded[split]
    columns = loaded.to_dict()
    for name, feature in loaded.features.items():
        # Saved datasets often store class ids with their names in a ClassLabel feature.
        if isinstance(feature, datasets.ClassLabel):
            columns[name] = [feature.int2str(v) if v is not None and v >= 0 else None for v in columns[name]]
    return Table(path, columns, list(range(1, len(loaded) + 1)), unit="row")


def saved_splits(path: Path) -> list[str]:
    """The split names of a `save_to_disk` DatasetDict folder, or [] for anything else."""
    dict_file = Path(path) / "dataset_dict.json"
    if not dict_file.is_file():
        return []
    return list(json.loads(dict_file.read_text()).get("splits", []))


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
