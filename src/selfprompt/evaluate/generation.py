"""Eval's generations: the content key of one generation, the keyed append-only cache that makes a run
resumable, and the trigger pass.

A generation is keyed by sha256 of every input that changes it: backend, model id (content hash of the
weights, see selfprompt.models), condition, task name+version, item id and question, sampling, trigger,
format, and the prompt texts the condition uses (the icl-self-prompt prompt file's sha256, the manual
role's text). A rerun (or a run resumed after a kill) reads the cache, skips every key it holds and
generates only the rest; a torn last line left by a kill is cut when the file is reopened. `judge answers`
keeps its answers in the same kind of cache (GenerationCache).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from selfprompt.evaluate.config import EvalConfig
from selfprompt.evaluate.roles import manual_role
from selfprompt.evaluate.tasks import Item, TaskSpec
from selfprompt.format import get_format
from selfprompt.generate.backends.base import Backend, ChatRequest, Sampling
from selfprompt.generate.conditions import ConditionOutput, ManualRole, get_condition
from selfprompt.jsonl import JsonlAppender, iter_json_lines, validation_error
from selfprompt.records import Usage

R = TypeVar("R", bound=BaseModel)


class GenerationCache(Generic[R]):
    """An append-only JSONL file of generations, each row a `row_type` with a `key` (sha256 of its inputs).

    Used as a context manager: entering opens the file (cutting a torn last line left by a kill) and reads
    every row; `add` appends one durably. A row whose key is held is never generated again, so a killed run
    resumes where it stopped, and rows of other inputs (another model, sampling, prompt) stay apart by key.
    Raises DataError (file, line, field) for a row that is not a `row_type`.
    """

    def __init__(self, path: Path, row_type: type[R]):
        self.path = Path(path)
        self.row_type = row_type
        self.rows: dict[str, R] = {}
        self._appender: JsonlAppender | None = None

    def __enter__(self) -> GenerationCache[R]:
        self._appender = JsonlAppender(self.path)  # opening first cuts a torn tail left by a kill
        self.rows = {row.key: row for row in read_rows(self.path, self.row_type)}  # type: ignore[attr-defined]
        return self

    def __exit__(self, *exc) -> None:
        if self._appender is not None:
            self._appender.close()
            self._appender = None

    def __contains__(self, key: str) -> bool:
        return key in self.rows

    def __getitem__(self, key: str) -> R:
        return self.rows[key]

    def missing(self, keyed: Iterable[tuple[Any, str]]) -> list[tuple[Any, str]]:
        """The (thing, key) pairs whose key the cache lacks, each key once (first thing wins), in order."""
        return list({k: (x, k) for x, k in keyed if k not in self.rows}.values())

    def add(self, row: R) -> None:
        assert self._appender is not None, "GenerationCache.add outside its `with` block"
        self._appender.append(row)
        self.rows[row.key] = row  # type: ignore[attr-defined]


def read_rows(path: Path, row_type: type[R]) -> Iterable[R]:
    """The rows of a generation cache file (none if it does not exist yet)."""
    from pydantic import ValidationError

    if path.exists():
        for number, obj in iter_json_lines(path):
            try:
                yield row_type.model_validate(obj)
            except ValidationError as e:
                raise validation_error(path, number, e) from None


def batches(rows: list, size: int) -> Iterable[list]:
    it = iter(rows)
    while batch := list(itertools.islice(it, size)):
        yield batch


class Generation(BaseModel):
    """One cached generation (answering turn plus trigger pass) for one item under one condition."""

    key: str
    task: str
    task_version: str
    condition: str
    item_id: str
    model: str
    role: str | None
    answer: str
    raw: str
    format_held: bool | None
    problem: str | None
    trigger_output: str | None
    finish_reason: str
    usage: Usage
    messages: list[dict[str, str]]
    assistant_prefix: str
    role_check: str | None = None  # model-written roles: "ok" or the failed role check (see conditions)


def sampling_for(config: EvalConfig) -> Sampling:
    return Sampling(max_tokens=config.max_tokens, temperature=config.temperature, seed=config.seed or 0)


def trigger_sampling(config: EvalConfig) -> Sampling:
    # No stop string: small models often answer the trigger with ":\n\nYes", and a blank-line stop
    # would cut that to ":" (measured: every StrategyQA item of a tuned 135M model). The extractors
    # take the first answer in the continuation, so what follows it does no harm.
    return Sampling(max_tokens=config.trigger_max_tokens, temperature=0.0, seed=0)


def task_manual_role(spec: TaskSpec, condition: str) -> ManualRole | None:
    """The manual role of the task's family where the condition needs one (roles.yaml), else None."""
    return manual_role(spec.role_family) if get_condition(condition).needs_manual_role else None


def condition_prompts(condition: str, spec: TaskSpec, config: EvalConfig) -> dict[str, Any] | None:
    """The prompt texts and settings a condition adds to a generation (None for conditions without any)."""
    return get_condition(condition).cache_prompts(sampling_for(config), task_manual_role(spec, condition))


def cache_key(
    backend: Backend,
    spec: TaskSpec,
    item: Item,
    condition: str,
    config: EvalConfig,
    prompts: dict[str, Any] | None = None,
) -> str:
    """sha256 of every input of one generation; `prompts` is condition_prompts(...) (computed if not given)."""
    trigger = None if config.no_trigger else spec.trigger
    parts = {
        "backend": backend.name,
        "model": backend.model_id,
        "condition": condition,
        "task": spec.name,
        "task_version": spec.version,
        "item": item.id,
        "question": item.question,
        "sampling": sampling_for(config).model_dump(),
        "trigger": trigger,
        "trigger_sampling": trigger_sampling(config).model_dump() if trigger else None,
        "format": config.format,
        "prompts": condition_prompts(condition, spec, config) if prompts is None else prompts,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def trigger_request(out: ConditionOutput, trigger: str, sampling: Sampling) -> ChatRequest:
    """Second pass (Kojima et al. 2022): the model's own output, then the trigger, continued."""
    prefix = out.assistant_prefix + out.raw.rstrip() + "\n" + trigger
    return ChatRequest(messages=out.messages, sampling=sampling, assistant_prefix=prefix)


def generate_batch(
    backend: Backend, spec: TaskSpec, items: list[Item], condition: str, keys: list[str], config: EvalConfig
) -> list[Generation]:
    fmt = get_format(config.format)
    outputs = get_condition(condition).answer(
        backend,
        [i.question for i in items],
        sampling_for(config),
        fmt=fmt,
        manual_role=task_manual_role(spec, condition),
    )
    trigger = None if config.no_trigger else spec.trigger
    triggered: list[str | None] = [None] * len(items)
    if trigger:
        responses = backend.generate([trigger_request(o, trigger, trigger_sampling(config)) for o in outputs])
        triggered = [r.text for r in responses]
        for o, r in zip(outputs, responses):
            o.usage = o.usage + r.usage
    return [
        Generation(
            key=k,
            task=spec.name,
            task_version=spec.version,
            condition=condition,
            item_id=i.id,
            model=backend.model_id,
            **o.read_fields(),
            trigger_output=t,
            usage=o.usage,
            messages=[m.model_dump() for m in o.messages],
            assistant_prefix=o.assistant_prefix,
            role_check=o.role_check,
        )
        for i, k, o, t in zip(items, keys, outputs, triggered)
    ]


def generations_path(out: Path, task: str, condition: str) -> Path:
    return out / "generations" / f"{task}__{condition}.jsonl"


def run_generations(
    backend: Backend,
    spec: TaskSpec,
    items: list[Item],
    condition: str,
    config: EvalConfig,
    progress: Callable[[int, bool], None] = lambda n, cached: None,
) -> list[Generation]:
    """Generate what the cache lacks, appending each batch durably; return one generation per item.

    `progress(n, cached)` hears of the items served from the cache first (cached=True, possibly 0, so a
    progress line opens before the first batch), then of each batch generated (cached=False)."""
    with GenerationCache(generations_path(Path(config.out), spec.name, condition), Generation) as cache:
        prompts = condition_prompts(condition, spec, config)
        keys = [cache_key(backend, spec, i, condition, config, prompts) for i in items]
        todo = cache.missing(zip(items, keys))
        progress(len(items) - len(todo), True)
        for batch in batches(todo, config.batch_size or getattr(backend, "batch_size", None) or 8):
            for g in generate_batch(backend, spec, [i for i, _ in batch], condition, [k for _, k in batch], config):
                cache.add(g)
            progress(len(batch), False)
        return [cache[k] for k in keys]
