"""Example loaders: LIMA (GAIR/lima format) and generic instruction JSONL (Alpaca, Dolly, any mapping).

Strict by design: a bad line raises `DataError(file, line, field, msg)`; nothing is skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from selfprompt.data.mirror import check_files, resolve_data_dir
from selfprompt.errors import ConfigError, DataError
from selfprompt.jsonl import iter_json_lines
from selfprompt.records import Example, Message

LIMA_HUB_ID = "GAIR/lima"
LIMA_MIRROR_FILE = "lima/train.jsonl"

# Our field -> the source's column. `input` is extra context appended to the question.
FIELD_KEYS = ("question", "answer", "id", "input", "source")
ALPACA_FIELDS = {"question": "instruction", "input": "input", "answer": "output"}
DOLLY_FIELDS = {"question": "instruction", "input": "context", "answer": "response"}


def load_examples(
    source: str,
    *,
    data_dir: str | Path | None = None,
    field_map: dict[str, str] | None = None,
    limit: int | None = None,
) -> list[Example]:
    """`source` is "lima" (mirror file, else the gated hub dataset) or a path to a JSONL file.

    A path whose rows carry `conversations` is read as GAIR/lima format; otherwise rows are mapped
    with `field_map` (our field -> their column), or detected as Alpaca or Dolly.
    """
    if limit is not None and limit < 0:
        raise ConfigError(f"limit must be >= 0, got {limit}")
    if source == "lima":
        return _load_lima(data_dir, limit)
    path = Path(source).expanduser()
    if not path.is_file():
        raise DataError(str(path), None, None, "file not found (give 'lima' or a path to a JSONL file)")
    try:
        root = resolve_data_dir(data_dir, required=False)
    except ConfigError:  # a file given by path needs no mirror
        root = None
    if root is not None:
        check_files(root, [path])  # a file inside the data mirror is checked like any mirror file; others are not
    rows = _take(iter_json_lines(path), limit)
    first = rows[0][1] if rows else {}
    if field_map is None and "conversations" in first:
        return [lima_example(path, line, obj, index) for index, (line, obj) in enumerate(rows)]
    mapping = _field_mapping(path, first, field_map)
    return _unique_ids(
        path, rows, [mapped_example(path, line, obj, index, mapping) for index, (line, obj) in enumerate(rows)]
    )


def _take(rows: Iterator[tuple[int, dict[str, Any]]], limit: int | None) -> list[tuple[int, dict[str, Any]]]:
    taken = []
    for row in rows:
        if limit is not None and len(taken) >= limit:
            break
        taken.append(row)
    return taken


# --- LIMA ----------------------------------------------------------------------------------------
def _load_lima(data_dir: str | Path | None, limit: int | None) -> list[Example]:
    root = resolve_data_dir(data_dir, required=False)
    if root is not None and (root / LIMA_MIRROR_FILE).is_file():
        path = root / LIMA_MIRROR_FILE
        check_files(root, [path])
        return [lima_example(path, line, obj, i) for i, (line, obj) in enumerate(_take(iter_json_lines(path), limit))]
    rows = _lima_from_hub(missing=root / LIMA_MIRROR_FILE if root is not None else None)
    label = f"hf://datasets/{LIMA_HUB_ID}"
    return [lima_example(label, i + 1, row, i) for i, row in enumerate(_take_plain(rows, limit))]


def _take_plain(rows: Iterable[dict[str, Any]], limit: int | None) -> list[dict[str, Any]]:
    return [row for _, row in _take(((0, r) for r in rows), limit)]


def _lima_from_hub(missing: Path | None) -> Iterable[dict[str, Any]]:
    """The real hub dataset; it is gated, so failures explain the token and the local alternative."""
    try:
        from datasets import load_dataset

        return load_dataset(LIMA_HUB_ID, split="train")
    except Exception as e:  # offline, gated (401/403), or not found all arrive as different types
        where = f"{missing} does not exist, and " if missing else ""
        raise DataError(
            f"hf://datasets/{LIMA_HUB_ID}",
            None,
            None,
            f"{where}loading LIMA from the Hugging Face Hub failed ({type(e).__name__}: {str(e).splitlines()[0][:160]}). "
            "The dataset is gated: accept its terms on huggingface.co and set HF_TOKEN. Or pass a local file in "
            "GAIR/lima format: --data-dir DIR / SELFPROMPT_DATA_DIR=DIR with DIR/lima/train.jsonl, "
            "or the path of the .jsonl file itself.",
        ) from None


def lima_id(index: int) -> str:
    """The id of the LIMA row at 0-based `index` of its file: 'lima-00042'. Every code path that names a
    LIMA row uses this (five digits: LIMA has 1030 rows, and ids sort in file order)."""
    return f"lima-{index:05d}"


def lima_example(path: str | Path, line: int, obj: dict[str, Any], index: int) -> Example:
    """One GAIR/lima row: {"conversations": [user, assistant, user, ...], "source": ...}."""
    conv = obj.get("conversations")
    if conv is None:
        raise DataError(str(path), line, "conversations", "missing")
    if not isinstance(conv, list) or not conv:
        raise DataError(str(path), line, "conversations", "expected a non-empty list of strings")
    for k, turn in enumerate(conv):
        if not isinstance(turn, str):
            raise DataError(str(path), line, f"conversations[{k}]", f"expected a string, got {type(turn).__name__}")
    if not conv[0].strip():
        raise DataError(str(path), line, "conversations[0]", "the first turn (the question) is empty")
    if not isinstance(obj.get("source", ""), str):
        raise DataError(str(path), line, "source", f"expected a string, got {type(obj['source']).__name__}")
    turns = None
    if len(conv) > 2:  # multi-turn dialogue: keep it whole; question/answer are its first exchange
        turns = [Message(role="user" if k % 2 == 0 else "assistant", content=t) for k, t in enumerate(conv)]
    return Example(
        id=lima_id(index), question=conv[0], answer=conv[1] if len(conv) > 1 else "", source="lima", turns=turns
    )  # LIMA's own per-row origin (stackexchange, ...) is not kept


# --- generic instruction JSONL ------------------------------------------------------------------
def _field_mapping(path: Path, first: dict[str, Any], field_map: dict[str, str] | None) -> dict[str, str]:
    if field_map is not None:
        unknown = set(field_map) - set(FIELD_KEYS)
        if unknown:
            raise ConfigError(f"field_map keys {sorted(unknown)} are not ours; valid keys: {', '.join(FIELD_KEYS)}")
        if "question" not in field_map:
            raise ConfigError("field_map must name the question column, e.g. {'question': 'prompt'}")
        return dict(field_map)
    if "instruction" in first and "output" in first:
        return dict(ALPACA_FIELDS)
    if "instruction" in first and "response" in first:
        return dict(DOLLY_FIELDS)
    raise DataError(
        str(path),
        1,
        None,
        f"unknown instruction format (columns: {', '.join(sorted(first)) or 'none'}); expected GAIR/lima "
        "'conversations', Alpaca instruction/input/output, Dolly instruction/context/response, or a field map "
        "such as --field question=prompt --field answer=completion",
    )


def _text(path: Path, line: int, obj: dict[str, Any], column: str, required: bool) -> str:
    if column not in obj:
        if required:
            raise DataError(str(path), line, column, "missing")
        return ""
    value = obj[column]
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise DataError(str(path), line, column, f"expected a string, got {type(value).__name__}")
    return value


def mapped_example(path: Path, line: int, obj: dict[str, Any], index: int, mapping: dict[str, str]) -> Example:
    question = _text(path, line, obj, mapping["question"], required=True)
    if not question.strip():
        raise DataError(str(path), line, mapping["question"], "empty question")
    extra = _text(path, line, obj, mapping["input"], required=False) if "input" in mapping else ""
    if extra.strip():
        question = f"{question}\n\n{extra}"  # Alpaca/Dolly context follows the instruction
    answer = _text(path, line, obj, mapping["answer"], required=True) if "answer" in mapping else ""
    return Example(
        id=_row_id(path, line, obj, index, mapping),
        question=question,
        answer=answer,
        source=_text(path, line, obj, mapping["source"], required=True) if "source" in mapping else path.stem,
    )


def _row_id(path: Path, line: int, obj: dict[str, Any], index: int, mapping: dict[str, str]) -> str:
    if "id" not in mapping:
        return f"{path.stem}-{index:05d}"
    column = mapping["id"]
    if column not in obj:
        raise DataError(str(path), line, column, "missing")
    value = obj[column]
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DataError(str(path), line, column, f"expected a string or integer id, got {type(value).__name__}")
    return str(value)


def _unique_ids(path: Path, rows: list[tuple[int, dict[str, Any]]], examples: list[Example]) -> list[Example]:
    seen: dict[str, int] = {}
    for (line, _), example in zip(rows, examples):
        if example.id in seen:
            raise DataError(str(path), line, "id", f"duplicate id '{example.id}' (first on line {seen[example.id]})")
        seen[example.id] = line
    return examples
