"""The annotate stage: a teacher LLM writes an expert role-play prompt for every source question.

Output: one `RoleExample` per input row, in input order, appended durably as each finishes (rows
that finish early wait in a small buffer for their predecessors). A run killed at any moment
resumes by skipping the rows already in the output; requests it had already answered come from
the request cache for free. Nothing is ever dropped: every row ends ok, refused, invalid or error.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import statistics
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from selfprompt.annotate.template import DEFAULT_TEMPLATE, AnnotationTemplate, load_template
from selfprompt.annotate.validate import check_reply, words
from selfprompt.errors import ConfigError, SelfPromptError
from selfprompt.generate.backends import BACKEND_HELP, BackendName, infer_backend
from selfprompt.generate.backends.base import Backend, ChatRequest, Sampling
from selfprompt.generate.reliable import ReliableClient
from selfprompt.generate.servers import ServerConfig, server_field
from selfprompt.jsonl import JsonlAppender, read_records, write_json, write_records
from selfprompt.manifest import build_manifest
from selfprompt.records import Annotation, Example, RoleExample, Usage

STATUSES = ("ok", "refused", "invalid", "error")
CHARS_PER_TOKEN = 4.0  # estimate for --dry-run; real usage comes from the server


class TeacherRejected(SelfPromptError):
    """The teacher answered with an error no retry can fix (bad key, unknown model...)."""


def parse_field_map(text: str | dict[str, str] | None) -> dict[str, str] | None:
    """'question=instruction,answer=output' -> {'question': 'instruction', 'answer': 'output'}."""
    if not text or isinstance(text, dict):
        return text or None
    mapping = {}
    for part in text.split(","):
        ours, sep, theirs = part.partition("=")
        if not sep or not ours.strip() or not theirs.strip():
            raise ConfigError(f"--field-map: '{part}' is not OURS=THEIRS (e.g. question=instruction,answer=output)")
        mapping[ours.strip()] = theirs.strip()
    return mapping


class AnnotateConfig(BaseModel):
    """Everything that decides what `selfprompt annotate` does: its options, its --config file, an experiment's
    `annotate:` section. Recorded in the manifest."""

    model_config = ConfigDict(extra="forbid")

    out: Path = Field(
        description="Output JSONL of RoleExample rows (resumed if it exists); also names the "
        "summary, manifest and cache.",
        json_schema_extra={"cli": {"flags": ["--out", "-o"]}},
    )
    data: str = Field(default="lima", description="'lima' (the local mirror) or a path to an instruction JSONL file.")
    field_map: dict[str, str] | None = Field(
        default=None,
        description="Our field -> source field, e.g. question=instruction,answer=output.",
        json_schema_extra={"cli": {"parse": parse_field_map}},
    )
    data_dir: str | None = Field(default=None, description="Local data mirror (default: $SELFPROMPT_DATA_DIR).")
    limit: int | None = Field(default=None, ge=1, description="Annotate only the first N rows (after max_chars).")
    max_chars: int | None = Field(
        default=None,
        ge=1,
        description="Keep only rows whose question and answer together "
        "have at most this many characters (applied before limit): CPU demos train on "
        "short rows only.",
    )
    teacher: str = Field(
        default="default",
        description="Teacher model: 'default', a local path, or a model name on an OpenAI-compatible server.",
    )
    backend: BackendName = Field(default="auto", description=BACKEND_HELP.format(embedded="llamacpp"))
    base_url: str | None = Field(default=None, description="OpenAI-compatible server URL (openai backend).")
    api_key_env: str = Field(default="OPENAI_API_KEY", description="Name of the environment variable holding the key.")
    server: ServerConfig | None = server_field()
    template: str = Field(default=DEFAULT_TEMPLATE, description="Built-in template id or a YAML path.")
    structured: bool = Field(
        default=False,
        description="Ask for JSON (the template's response_format); servers must support it.",
        json_schema_extra={"cli": {"flags": ["--json/--no-json"]}},
    )
    concurrency: int = Field(default=8, ge=1, description="Requests in flight at once.")
    rpm: float | None = Field(default=None, gt=0, description="Requests-per-minute limit.")
    tpm: float | None = Field(
        default=None, gt=0, description="Tokens-per-minute limit (estimated before, corrected after)."
    )
    max_retries: int = Field(default=6, ge=0, description="Transport retries per request (429, 5xx, timeouts, drops).")
    max_attempts: int = Field(
        default=3, ge=1, description="Replies per row: an invalid reply is retried with feedback."
    )
    request_timeout: float | None = Field(
        default=300.0, gt=0, description="Seconds before one request counts as timed out."
    )
    temperature: float | None = Field(default=None, ge=0, description="Override the template's temperature.")
    top_p: float | None = Field(default=None, gt=0, le=1, description="Override the template's top_p.")
    max_tokens: int | None = Field(default=None, ge=1, description="Override the template's max_tokens.")
    seed: int = Field(default=0, description="Sampling seed sent with every request (part of the cache key).")
    cache: Path | None = Field(default=None, description="Request cache (sqlite); default <out>.cache.sqlite.")
    price_in: float | None = Field(default=None, ge=0, description="Price per 1M prompt tokens, for cost figures.")
    price_out: float | None = Field(default=None, ge=0, description="Price per 1M completion tokens.")
    retry_errors: bool = Field(
        default=False,
        description="Redo rows whose requests failed (status 'error') in an "
        "earlier run; the rows after them come back from the cache at no cost.",
    )

    @field_validator("field_map", mode="before")
    @classmethod
    def _field_map_text(cls, value: Any) -> Any:
        return parse_field_map(value) if isinstance(value, str) else value

    @property
    def backend_name(self) -> str:
        """The backend that runs the teacher (see selfprompt.generate.backends.infer_backend)."""
        return infer_backend(
            self.teacher, self.backend, base_url=self.base_url, embedded="llamacpp", server=self.server
        )

    @property
    def cache_path(self) -> Path:
        return self.cache or self.out.with_name(self.out.name + ".cache.sqlite")

    @property
    def summary_path(self) -> Path:
        return self.out.with_name(self.out.name + ".summary.json")

    @property
    def manifest_path(self) -> Path:
        return self.out.with_name(self.out.name + ".manifest.json")

    def sampling(self, template: AnnotationTemplate) -> Sampling:
        d = template.sampling
        return Sampling(
            temperature=d.temperature if self.temperature is None else self.temperature,
            top_p=d.top_p if self.top_p is None else self.top_p,
            max_tokens=d.max_tokens if self.max_tokens is None else self.max_tokens,
            stop=list(d.stop),
            seed=self.seed,
        )

    def cost(self, usage: Usage) -> float | None:
        if self.price_in is None and self.price_out is None:
            return None
        return (usage.prompt_tokens * (self.price_in or 0.0) + usage.completion_tokens * (self.price_out or 0.0)) / 1e6


# ---------------------------------------------------------------------------------------------
# One row


class RunCounters(BaseModel):
    validation_retries: int = 0  # replies after the first for a row (invalid reply -> feedback)
    rows: int = 0


async def annotate_example(
    client: ReliableClient,
    template: AnnotationTemplate,
    example: Example,
    cfg: AnnotateConfig,
    backend_name: str,
    counters: RunCounters,
) -> RoleExample:
    """Ask the teacher, check the reply, retry with feedback; always returns a row with a status."""
    started = time.perf_counter()
    messages = template.messages(example.question, structured=cfg.structured)
    sampling = cfg.sampling(template)
    response_format = template.response_format if cfg.structured else None
    usage, attempts, all_cached = Usage(), 0, True
    status, reason, role = "error", "no reply", ""
    for reply_number in range(cfg.max_attempts):
        if reply_number:
            counters.validation_retries += 1
        result = await client.generate(
            ChatRequest(messages=messages, sampling=sampling, response_format=response_format)
        )
        attempts += max(result.attempts, 1)  # a cached reply counts as the one request that made it
        if result.response is None:
            if result.quota:
                raise TeacherRejected(f"the teacher's account is out of quota, so the run stopped ({result.error})")
            if result.fatal:
                raise TeacherRejected(
                    f"the teacher rejected a request ({result.error}); check --teacher, "
                    f"--base-url and the key in ${cfg.api_key_env}"
                )
            status, reason = "error", result.error or "request failed"
            all_cached = False
            break
        all_cached = all_cached and result.cached
        usage = usage + result.response.usage
        verdict = check_reply(
            result.response.text,
            question=example.question,
            answer=example.answer,
            template=template,
            truncated=result.response.finish_reason == "length",
        )
        status, reason, role = verdict.status, verdict.reason, verdict.role_prompt
        if verdict.status != "invalid":
            break
        messages = messages + template.feedback_turns(result.response.text, verdict.reason)
    counters.rows += 1
    annotation = Annotation(
        teacher=client.backend.model_id,
        backend=backend_name,
        template=template.name,
        template_version=template.version,
        status=status,
        reason=reason,
        attempts=attempts,
        usage=usage,
        seconds=round(time.perf_counter() - started, 3),
        cached=all_cached and attempts > 0,
    )
    return RoleExample(**example.model_dump(), role_prompt=role, annotation=annotation)


# ---------------------------------------------------------------------------------------------
# Resume


def rows_already_done(out: Path, examples: list[Example], template: AnnotationTemplate, teacher: str) -> int:
    """How many leading input rows the output already holds; refuses an output from another job."""
    if not out.exists() or out.stat().st_size == 0:
        return 0
    done = read_records(out, RoleExample)
    if len(done) > len(examples):
        raise ConfigError(f"{out} has {len(done)} rows but the input has only {len(examples)}; use a new --out")
    for line, (row, example) in enumerate(zip(done, examples), start=1):
        if row.id != example.id:
            raise ConfigError(
                f"{out}:{line}: row id '{row.id}' is not input row '{example.id}': the output "
                "belongs to another input; use a new --out"
            )
        a = row.annotation
        if (a.template, a.template_version, a.teacher) != (template.name, template.version, teacher):
            raise ConfigError(
                f"{out}:{line}: made with template {a.template} v{a.template_version} and teacher "
                f"'{a.teacher}', not {template.name} v{template.version} and '{teacher}'; use a new --out"
            )
    return len(done)


# ---------------------------------------------------------------------------------------------
# The run


def cut_at_first_error(out: Path) -> int:
    """Drop the output's first 'error' row and every row after it; returns how many rows were dropped.

    Rows are written strictly in input order, so redoing a failed row means redoing from there. The
    later rows cost nothing: their requests are in the cache (failed requests never are).
    """
    if not out.exists():
        return 0
    JsonlAppender(out).close()  # cuts a torn last line left by a kill, so the file parses
    rows = read_records(out, RoleExample)
    first = next((i for i, row in enumerate(rows) if row.annotation.status == "error"), len(rows))
    if first < len(rows):
        write_records(out, rows[:first])
    return len(rows) - first


def load_source(cfg: AnnotateConfig) -> list[Example]:
    from selfprompt.data import load_examples

    if cfg.max_chars is None:
        return load_examples(cfg.data, data_dir=cfg.data_dir, field_map=cfg.field_map, limit=cfg.limit)
    examples = load_examples(cfg.data, data_dir=cfg.data_dir, field_map=cfg.field_map)
    short = [e for e in examples if len(e.question) + len(e.answer) <= cfg.max_chars]
    return short[: cfg.limit]


def make_backend(cfg: AnnotateConfig) -> contextlib.AbstractContextManager[Backend]:
    """The teacher's backend, closed on exit; with a `server`, the server is started for it (log beside out)."""
    from selfprompt.generate.servers import stage_backend

    return stage_backend(
        cfg.teacher,
        cfg.backend,
        base_url=cfg.base_url,
        api_key_env=cfg.api_key_env,
        server=cfg.server,
        log=cfg.out.with_name(cfg.out.name + ".server.log"),
        embedded="llamacpp",
        concurrency=cfg.concurrency,
        timeout=cfg.request_timeout or 600.0,
    )


def run_annotate(
    cfg: AnnotateConfig, *, backend: Backend | None = None, show_progress: bool = True, console: Any = None
) -> dict[str, Any]:
    """Annotate (or resume annotating) cfg.data into cfg.out; returns the summary (also written to disk)."""
    template = load_template(cfg.template)
    examples = load_source(cfg)
    if backend is not None:
        return _run_annotate(cfg, template, examples, backend, show_progress, console)
    with make_backend(cfg) as own:
        return _run_annotate(cfg, template, examples, own, show_progress, console)


def _run_annotate(
    cfg: AnnotateConfig,
    template: AnnotationTemplate,
    examples: list[Example],
    backend: Backend,
    show_progress: bool,
    console: Any,
) -> dict[str, Any]:
    client = ReliableClient(
        backend,
        cache_path=cfg.cache_path,
        concurrency=cfg.concurrency,
        requests_per_minute=cfg.rpm,
        tokens_per_minute=cfg.tpm,
        max_retries=cfg.max_retries,
        request_timeout=cfg.request_timeout,
        cache_namespace=template.id,
    )
    started = time.perf_counter()
    counters = RunCounters()
    if cfg.retry_errors:
        cut_at_first_error(cfg.out)
    try:
        with JsonlAppender(cfg.out) as appender:  # opening cuts a torn last line left by a kill
            skip = rows_already_done(cfg.out, examples, template, backend.model_id)
            write_json(cfg.manifest_path, _manifest(cfg, template, backend, examples))
            todo = examples[skip:]
            with _progress(show_progress, console, len(examples), skip) as advance:
                asyncio.run(
                    _closing(
                        backend,
                        _annotate_in_order(
                            client, template, todo, cfg, backend.name, counters, appender.append, advance
                        ),
                    )
                )
    finally:
        client.close()
    summary = summarize(
        cfg, read_records(cfg.out, RoleExample), len(examples), skip, time.perf_counter() - started, client, counters
    )
    write_json(cfg.summary_path, summary)
    return summary


async def _closing(backend: Backend, work: Awaitable[None]) -> None:
    try:
        await work
    finally:
        await backend.aclose()  # before asyncio.run closes the loop the async clients live on


async def _annotate_in_order(
    client: ReliableClient,
    template: AnnotationTemplate,
    todo: list[Example],
    cfg: AnnotateConfig,
    backend_name: str,
    counters: RunCounters,
    write: Callable[[RoleExample], None],
    advance: Callable[[RoleExample], None],
) -> None:
    """Run rows concurrently, write them strictly in input order.

    At most `window` rows are in flight or finished-but-waiting, so memory stays bounded and a slow
    row holds back writing (not work) by at most that many rows.
    """
    window = max(4 * cfg.concurrency, 16)
    pending: deque[asyncio.Task[RoleExample]] = deque()

    def start(example: Example) -> None:
        task = asyncio.ensure_future(annotate_example(client, template, example, cfg, backend_name, counters))
        task.add_done_callback(lambda t: advance(t.result()) if not t.cancelled() and t.exception() is None else None)
        pending.append(task)

    try:
        for example in todo:
            start(example)
            while len(pending) >= window:
                write(await pending.popleft())
        while pending:
            write(await pending.popleft())
    finally:
        for task in pending:  # a fatal error or Ctrl-C: unwritten rows are redone on resume
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


def _manifest(cfg: AnnotateConfig, template: AnnotationTemplate, backend: Backend, examples: list[Example]) -> dict:
    from selfprompt.data import LIMA_MIRROR_FILE, resolve_data_dir

    source = Path(cfg.data)
    if cfg.data == "lima":
        root = resolve_data_dir(cfg.data_dir, required=False)
        source = root / LIMA_MIRROR_FILE if root is not None else source
    data_files = [source] if source.is_file() else []
    return build_manifest(
        stage="annotate",
        config=cfg.model_dump(mode="json"),
        data_files=data_files,
        seed=cfg.seed,
        extra={
            "teacher_model_id": backend.model_id,
            "backend": backend.name,
            "template": template.id,
            "input_rows": len(examples),
        },
    )


# ---------------------------------------------------------------------------------------------
# Progress, dry run, summary


class _progress:
    """The progress line (see selfprompt.progress) with the status counts; rows resumed from the output and
    replies served from the request cache are counted as cached, so the rate is that of the teacher's work."""

    def __init__(self, enabled: bool, console: Any, total: int, done: int):
        from selfprompt.progress import ProgressLine

        self.line = ProgressLine("annotate", total, "rows", console=console, show=enabled)
        self.done = done
        self.counts: Counter[str] = Counter()

    def __enter__(self) -> Callable[[RoleExample], None]:
        self.line.__enter__()
        self.line.advance(self.done, cached=True)
        return self._advance

    def _advance(self, row: RoleExample) -> None:
        self.counts[row.annotation.status] += 1
        self.line.set_detail(" ".join(f"{s} {self.counts[s]}" for s in STATUSES if self.counts[s]))
        self.line.advance(1, cached=row.annotation.cached)

    def __exit__(self, *exc: Any) -> None:
        self.line.__exit__(*exc)


def dry_run(cfg: AnnotateConfig) -> dict[str, Any]:
    """What a run would send: requests, estimated tokens and cost. Sends nothing, loads no model."""
    template = load_template(cfg.template)
    examples = load_source(cfg)
    done = 0
    if cfg.out.exists() and cfg.out.stat().st_size:
        done = len(read_records(cfg.out, RoleExample))
    todo = examples[done:]
    sampling = cfg.sampling(template)
    prompt_tokens = sum(_estimate_prompt_tokens(template, ex, cfg.structured) for ex in todo)
    # A role prompt is about as long as the template's own exemplars.
    typical = statistics.mean(len(words(e.role_prompt)) for e in template.examples) * 1.4 if template.examples else 150
    expected = Usage(prompt_tokens=prompt_tokens, completion_tokens=int(len(todo) * min(typical, sampling.max_tokens)))
    worst = Usage(
        prompt_tokens=prompt_tokens * cfg.max_attempts,
        completion_tokens=len(todo) * sampling.max_tokens * cfg.max_attempts,
    )
    return {
        "input_rows": len(examples),
        "rows_already_done": done,
        "rows_to_annotate": len(todo),
        "requests": {"expected": len(todo), "at_most": len(todo) * cfg.max_attempts},
        "estimated_tokens": {"expected": _usage_dict(expected), "at_most": _usage_dict(worst)},
        "estimated_cost": {"expected": cfg.cost(expected), "at_most": cfg.cost(worst)},
        "note": f"tokens estimated at {CHARS_PER_TOKEN:.0f} characters per token; cached requests cost nothing",
        "template": template.id,
        "sampling": sampling.model_dump(),
    }


def _estimate_prompt_tokens(template: AnnotationTemplate, example: Example, structured: bool) -> int:
    chars = sum(len(m.content) for m in template.messages(example.question, structured=structured))
    return int(chars / CHARS_PER_TOKEN)


def _usage_dict(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


def _length_stats(values: list[int]) -> dict[str, float] | None:
    if not values:
        return None
    return {
        "min": min(values),
        "mean": round(statistics.mean(values), 1),
        "median": statistics.median(values),
        "max": max(values),
    }


def _reason_kind(reason: str) -> str:
    """'too short (12 words; ...)' -> 'too short': groups reasons for the summary."""
    return re.split(r"[(:'\"]", reason, maxsplit=1)[0].strip() or reason


def summarize(
    cfg: AnnotateConfig,
    rows: list[RoleExample],
    input_rows: int,
    resumed: int,
    seconds: float,
    client: ReliableClient,
    counters: RunCounters,
) -> dict[str, Any]:
    status = Counter(r.annotation.status for r in rows)
    usage = sum((r.annotation.usage for r in rows), Usage())
    ok = [r for r in rows if r.annotation.status == "ok"]
    stats = client.stats
    return {
        "out": str(cfg.out),
        "input_rows": input_rows,
        "rows": len(rows),
        "status": {s: status.get(s, 0) for s in STATUSES},
        "reasons": dict(
            Counter(_reason_kind(r.annotation.reason) for r in rows if r.annotation.reason).most_common(10)
        ),
        "requests_per_row": round(sum(r.annotation.attempts for r in rows) / len(rows), 3) if rows else 0,
        "cached_rows": sum(r.annotation.cached for r in rows),
        "usage": _usage_dict(usage),
        "cost": cfg.cost(usage),
        "role_words": _length_stats([len(words(r.role_prompt)) for r in ok]),
        "role_chars": _length_stats([len(r.role_prompt) for r in ok]),
        "this_run": {
            "rows_resumed_from_output": resumed,
            "rows_annotated": counters.rows,
            "seconds": round(seconds, 2),
            "rows_per_second": round(counters.rows / seconds, 3) if seconds > 0 else None,
            "validation_retries": counters.validation_retries,
            "transport_retries": stats.retries,
            **stats.as_dict(),
            "cost": cfg.cost(stats.usage),
        },
    }
