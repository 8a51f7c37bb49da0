"""JSONL reading with file:line:field errors, and crash-safe appending for resumable stages.

Appends are one `write` of a whole line followed by fsync. A process killed mid-write (kill -9)
can leave at most one torn last line; `JsonlAppender` cuts it off when it reopens the file, so
a resumed run never duplicates or half-writes a row.
"""

from __future__ import annotations

import codecs
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from selfprompt.errors import DataError, error_field

R = TypeVar("R", bound=BaseModel)


def iter_json_lines(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line_number, object) for each non-blank line; bad JSON raises DataError.

    A UTF-8 byte order mark at the start of the file (as Windows tools write) is skipped.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(str(path), None, None, "file not found")
    with path.open("rb") as f:  # bytes: a line that is not UTF-8 is reported by its number
        for number, raw in enumerate(f, start=1):
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(str(path), number, None, f"not UTF-8 text (byte {e.start + 1} of the line)") from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(str(path), number, None, f"invalid JSON ({e.msg} at column {e.colno})") from None
            if not isinstance(obj, dict):
                raise DataError(str(path), number, None, f"expected a JSON object, got {type(obj).__name__}")
            yield number, obj


def validation_error(path: str | Path, line: int | None, err: ValidationError) -> DataError:
    """Turn pydantic's error into one naming the first bad field."""
    first = err.errors()[0]
    return DataError(str(path), line, error_field(first) or None, first["msg"])


def read_records(path: str | Path, model: type[R]) -> list[R]:
    """Read a JSONL file of `model` records; the first bad line raises DataError."""
    rows = []
    for number, obj in iter_json_lines(path):
        try:
            rows.append(model.model_validate(obj))
        except ValidationError as e:
            raise validation_error(path, number, e) from None
    return rows


def write_records(path: str | Path, records: Iterable[BaseModel | dict]) -> None:
    """Write a whole JSONL file atomically (temp file + rename): readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for r in records:
            f.write(_dumps(r) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_text(path: str | Path, text: str) -> None:
    """Write a text file atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_json(path: str | Path, obj: Any) -> None:
    """Write one JSON document atomically."""
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def _dumps(record: BaseModel | dict) -> str:
    if isinstance(record, BaseModel):
        return record.model_dump_json()
    return json.dumps(record, ensure_ascii=False)


class JsonlAppender:
    """Append records one durable line at a time; reopening cuts a torn last line."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._cut_torn_tail()
        self._file = self.path.open("a", encoding="utf-8")

    def _cut_torn_tail(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            with self.path.open("r+b") as f:
                f.truncate(keep)

    def append(self, record: BaseModel | dict) -> None:
        self._file.write(_dumps(record) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
