"""Benchmark tasks, declared as data.

Each task is one YAML file (`selfprompt/evaluate/tasks/<name>.yaml`, or any file passed with
`--task-file`, or any `*.yaml` in a folder named by `SELFPROMPT_TASKS_DIR`). The file says where
the rows are (local mirror path and hub id), how a row becomes a question (and its choices and
reference answer), the answer type, the second-pass trigger, the extractor chain, the metric,
the manual-role family and a version that is part of every cache key.

Row mapping (`row:`) is small and declarative:

    id:        str.format template over the row (default: "<task>-<index>")
    question:  str.format template over the row, e.g. "{Body} {Question}" or "{question[stem]}"
    choices:   one of
               {dicts: PATH, label: KEY, text: KEY}  list of dicts (CommonsenseQA, ARC)
               {columns: [COL, ...]}                 one column per choice (MMLU CSV); labels A, B, ...
               {scores: PATH}                        BIG-bench target_scores keys; labels A, B, ...
               {strings: PATH, pattern: REGEX}       "A)text" strings (AQuA); groups (label, text)
    answer:    PATH to the reference answer (dotted; list indices allowed: lSolutions.0)
    answer_from_scores: PATH                         the target_scores key whose score is highest
    answer_pattern: REGEX                            keep group 1 of the answer (GSM8K "#### N")
    answer_index_to_label: bool                      0-3 index -> letter (MMLU)
"""

from __future__ import annotations

import csv
import json
import os
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from selfprompt.errors import ConfigError, DataError
from selfprompt.jsonl import iter_json_lines, validation_error

AnswerType = Literal["number", "choice", "yes_no", "text", "code"]
FileFormat = Literal["jsonl", "json-list", "json-examples", "csv"]
LABELS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class ChoicesSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dicts: str | None = Field(default=None, description="Path to a list of {label, text} dicts.")
    label: str = Field(default="label", description="Key of the label in each dict of `dicts`.")
    text: str = Field(default="text", description="Key of the text in each dict of `dicts`.")
    columns: list[str] | None = Field(default=None, description="One row column per choice; labels A, B, ...")
    scores: str | None = Field(default=None, description="Path to a BIG-bench target_scores dict.")
    strings: str | None = Field(default=None, description="Path to a list of 'A)text' strings.")
    pattern: str = Field(default=r"^\s*\(?([A-Z])\)\s*(.*)$", description="Regex (label, text) for `strings`.")
    shuffle_seed: int | None = Field(
        default=None,
        description="Shuffle choice order per item with this seed (+ row index) and relabel A, B, ...; "
        "for sources whose correct choice is nearly always first (BIG-bench date_understanding).",
    )


class RowSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, description="str.format template for the item id; default task-index.")
    question: str = Field(description="str.format template over the row that gives the question text.")
    choices: ChoicesSpec | None = Field(default=None, description="Where the answer choices come from.")
    answer: str | None = Field(default=None, description="Dotted path to the reference answer.")
    answer_from_scores: str | None = Field(default=None, description="Path to target_scores; answer = best key.")
    answer_pattern: str | None = Field(default=None, description="Regex; group 1 of the answer is kept.")
    answer_index_to_label: bool = Field(default=False, description="Map a 0-based index answer to A, B, ...")


class TaskSpec(BaseModel):
    """One benchmark. Every field is part of the task's declaration file."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Registry name, used in --tasks.")
    version: str = Field(description="Bumped whenever prompts/extraction change; part of the cache key.")
    description: str = ""
    files: list[str] = Field(description="Paths (globs allowed) relative to the data mirror, read in order.")
    file_format: FileFormat = Field(description="jsonl, json-list (top-level list), json-examples, csv.")
    expected_rows: int | None = Field(default=None, description="Row count of the full mirror files.")
    hub: str | None = Field(default=None, description="Hub dataset id (and config/split) of the original.")
    row: RowSpec
    answer_type: AnswerType
    choice_format: str = Field(
        default="{question}\nAnswer Choices: {choices}",
        description="How a question and its rendered choices are joined ('(A) x (B) y').",
    )
    instruction: str = Field(default="", description="Appended to the question (e.g. HumanEval's ask).")
    trigger: str | None = Field(default=None, description="Second-pass trigger; None disables the pass.")
    extractors: list[str] = Field(description="Extractor chain, strict first (see selfprompt.evaluate.extract).")
    metric: Literal["accuracy", "pass@1"] = "accuracy"
    role_family: str = Field(description="Manual-role family in roles.yaml (math, choice, ...).")
    source_path: str | None = Field(default=None, description="The YAML file this came from (filled in).")


class Item(BaseModel):
    """One benchmark question, ready to ask."""

    model_config = ConfigDict(extra="forbid")

    task: str
    id: str
    question: str = Field(description="What the model sees: question, choices and instruction.")
    answer: str = Field(
        description="Reference answer, normalized: number, letter, yes/no, text; code: the canonical solution."
    )
    choices: dict[str, str] = Field(default_factory=dict, description="Label -> choice text.")
    extra: dict[str, Any] = Field(default_factory=dict, description="Task data the scorer needs (HumanEval tests).")


# --- registry ---------------------------------------------------------------------------


def _builtin_files() -> list[Path]:
    folder = resources.files("selfprompt.evaluate") / "tasks"
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".yaml"))


def _user_files() -> list[Path]:
    folder = os.environ.get("SELFPROMPT_TASKS_DIR")
    return sorted(Path(folder).glob("*.yaml")) if folder else []


def load_task_file(path: str | Path) -> TaskSpec:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise DataError(str(path), None, None, f"cannot read task file: {e}") from None
    if not isinstance(data, dict):
        raise DataError(str(path), None, None, "a task file must be a YAML mapping")
    try:
        spec = TaskSpec.model_validate(data)
    except ValidationError as e:
        raise validation_error(path, None, e) from None
    return spec.model_copy(update={"source_path": str(path)})


@lru_cache(maxsize=1)
def _builtin_registry() -> dict[str, TaskSpec]:
    return {t.name: t for t in map(load_task_file, _builtin_files())}


def registry(task_files: list[str | Path] = ()) -> dict[str, TaskSpec]:
    """Built-in tasks, then the user's tasks folder, then explicit files (later ones win)."""
    tasks = dict(_builtin_registry())
    for path in [*_user_files(), *task_files]:
        spec = load_task_file(path)
        tasks[spec.name] = spec
    return tasks


def get_tasks(names: list[str], task_files: list[str | Path] = ()) -> list[TaskSpec]:
    tasks = registry(task_files)
    unknown = [n for n in names if n not in tasks]
    if unknown:
        raise ConfigError(f"unknown task(s) {', '.join(unknown)}; valid: {', '.join(sorted(tasks))}")
    return [tasks[n] for n in names]


# --- reading rows -------------------------------------------------------------------------


def task_files(spec: TaskSpec, data_dir: str | Path) -> list[Path]:
    data_dir = Path(data_dir)
    paths: list[Path] = []
    for pattern in spec.files:
        matched = sorted(data_dir.glob(pattern))
        if not matched:
            hub = f" (original: {spec.hub})" if spec.hub else ""
            raise DataError(
                str(data_dir / pattern),
                None,
                None,
                f"task '{spec.name}' data not found in the mirror{hub}; pass --data-dir",
            )
        paths.extend(matched)
    from selfprompt.data.mirror import check_files

    check_files(data_dir, paths)  # against MANIFEST.json, before anything is read
    return paths


def _read_rows(path: Path, fmt: FileFormat) -> list[tuple[int, dict[str, Any]]]:
    """(line or entry number, row) pairs; the number is what an error message points at."""
    try:
        if fmt == "csv":
            with path.open(newline="", encoding="utf-8-sig") as f:  # -sig: a BOM is not part of the header
                return [(n + 2, row) for n, row in enumerate(csv.DictReader(f))]  # +2: 1-based, header
        if fmt == "jsonl":
            return list(iter_json_lines(path))
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as e:
        raise DataError(str(path), e.lineno, None, f"invalid JSON ({e.msg})") from None
    rows = data if fmt == "json-list" else data.get("examples") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise DataError(str(path), None, "examples" if fmt == "json-examples" else None, "expected a list of rows")
    return [(n + 1, r) for n, r in enumerate(rows)]


def get_path(row: Any, path: str) -> Any:
    for key in path.split("."):
        row = row[int(key)] if isinstance(row, list) else row[key]
    return row


def _choices(spec: ChoicesSpec, row: dict[str, Any], index: int) -> dict[str, str]:
    choices = _raw_choices(spec, row)
    if spec.shuffle_seed is None:
        return choices
    import random

    texts = list(choices.values())
    random.Random(spec.shuffle_seed * 1_000_003 + index).shuffle(texts)
    return {LABELS[i]: t for i, t in enumerate(texts)}


def _raw_choices(spec: ChoicesSpec, row: dict[str, Any]) -> dict[str, str]:
    if spec.dicts:
        return {str(c[spec.label]).strip(): str(c[spec.text]).strip() for c in get_path(row, spec.dicts)}
    if spec.columns:
        return {LABELS[i]: str(row[c]).strip() for i, c in enumerate(spec.columns)}
    if spec.scores:
        return {LABELS[i]: str(k).strip() for i, k in enumerate(get_path(row, spec.scores))}
    if spec.strings:
        out = {}
        for s in get_path(row, spec.strings):
            m = re.match(spec.pattern, s, re.DOTALL)
            if not m:
                raise KeyError(f"choice {s!r} does not match {spec.pattern!r}")
            out[m.group(1)] = m.group(2).strip()
        return out
    raise KeyError("choices: give one of dicts, columns, scores, strings")


def _answer(spec: TaskSpec, row: dict[str, Any], choices: dict[str, str]) -> str:
    r = spec.row
    if r.answer_from_scores:
        scores = get_path(row, r.answer_from_scores)
        best = max(scores, key=lambda k: scores[k])
        if spec.answer_type == "choice":
            return next(label for label, text in choices.items() if text == str(best).strip())
        return normalize_reference(spec.answer_type, str(best))
    if r.answer is None:
        return ""
    value = get_path(row, r.answer)
    if r.answer_index_to_label:
        return LABELS[int(value)]
    if spec.answer_type == "code":
        return str(value)  # indentation matters
    value = str(value).strip()
    if r.answer_pattern:
        m = re.search(r.answer_pattern, value, re.DOTALL)
        if not m:
            raise KeyError(f"answer {value!r} does not match {r.answer_pattern!r}")
        value = m.group(1).strip()
    return normalize_reference(spec.answer_type, value)


def normalize_reference(answer_type: AnswerType, value: str) -> str:
    if answer_type == "number":
        from selfprompt.evaluate.extract import normalize_number

        return normalize_number(value) or value
    if answer_type == "yes_no":
        return value.strip().lower()
    return value.strip()


def _build_item(spec: TaskSpec, row: dict[str, Any], index: int) -> Item:
    choices = _choices(spec.row.choices, row, index) if spec.row.choices else {}
    question = spec.row.question.format(**row).strip()
    if choices:
        rendered = " ".join(f"({label}) {text}" for label, text in choices.items())
        question = spec.choice_format.format(question=question, choices=rendered)
    if spec.instruction:
        question = f"{question}\n\n{spec.instruction}"
    item_id = spec.row.id.format(**row) if spec.row.id else f"{spec.name}-{index}"
    extra = {k: row[k] for k in ("prompt", "test", "entry_point") if spec.answer_type == "code" and k in row}
    return Item(
        task=spec.name, id=item_id, question=question, answer=_answer(spec, row, choices), choices=choices, extra=extra
    )


def load_items(spec: TaskSpec, data_dir: str | Path) -> list[Item]:
    """Every row of the task's files as an Item; a row that does not fit names file, line and field."""
    items: list[Item] = []
    for path in task_files(spec, data_dir):
        for number, row in _read_rows(path, spec.file_format):
            try:
                items.append(_build_item(spec, row, len(items)))
            except (KeyError, IndexError, ValueError, TypeError, StopIteration) as e:
                field = e.args[0] if isinstance(e, KeyError) and isinstance(e.args[0], str) else None
                raise DataError(str(path), number, field, f"row does not fit task '{spec.name}': {e!r}") from None
    return items


def select_items(items: list[Item], limit: int | None, seed: int | None) -> list[Item]:
    """The first `limit` items, or a seeded random subset of `limit` items (same seed, same subset)."""
    if limit is None or limit >= len(items):
        return items
    if seed is None:
        return items[:limit]
    import numpy as np

    picked = np.random.default_rng(seed).choice(len(items), size=limit, replace=False)
    return [items[i] for i in sorted(picked)]
