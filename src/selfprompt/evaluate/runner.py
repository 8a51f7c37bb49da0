"""`selfprompt eval`: ask a model every task's questions under every condition, then score.

Layout of `--out DIR`:

    settings.json                           the run's scope: tasks, conditions, limit, seed (see below)
    generations/<task>__<condition>.jsonl   append-only generation cache (one row per item; resumable)
    items/<task>__<condition>.jsonl         scored per-item records (rewritten from the cache each run)
    results.json, results.md                accuracy with CIs, extraction failures, paired comparisons
    manifest.json                           config, versions, data hashes, seed

A generation row is keyed by sha256 of every input that changes it: backend, model id (content
hash of the weights, see selfprompt.models), condition, task name+version, item id and question,
sampling, trigger, format, and the prompt texts the condition uses (the icl-self-prompt prompt
file's sha256, the manual role's text). A rerun (or a run resumed after a kill) reads the cache,
skips every key it holds and generates only the rest; a torn last line left by a kill is cut when
the file is reopened.

A folder holds one run. Its scope (settings.json: tasks, conditions, limit, seed) says which
results it writes; a rerun with the same scope resumes, one with another scope is refused, or with
`overwrite` replaces the run. Other inputs (another model, sampling, an edited prompt) are in the
generation keys: a rerun with them generates anew and rewrites every result. Results, items and
manifest are removed when a run starts and written from the cache at its end, so nothing of an
earlier run stays beside a new one; the generation cache is kept, since its keys tell runs apart.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil
from pathlib import Path
from typing import Any, Callable, Iterable

from pydantic import BaseModel, ConfigDict, Field

from selfprompt.errors import ConfigError, DataError
from selfprompt.evaluate.extract import ExtractInput, extract, is_correct
from selfprompt.evaluate.roles import manual_role, roles_version
from selfprompt.evaluate.sandbox import SandboxLimits, check_humaneval
from selfprompt.evaluate.stats import accuracy, paired_comparison
from selfprompt.evaluate.tasks import Item, TaskSpec, get_tasks, load_items, select_items, task_files
from selfprompt.format import DEFAULT_FORMAT, get_format
from selfprompt.generate.backends import BACKEND_HELP, BackendName
from selfprompt.generate.backends.base import Backend, ChatRequest, Sampling
from selfprompt.generate.conditions import CONDITIONS, DEFAULT_CONDITION, ConditionOutput, ManualRole, get_condition
from selfprompt.jsonl import JsonlAppender, iter_json_lines, write_json, write_records
from selfprompt.manifest import write_manifest
from selfprompt.records import Usage

TRIGGER_MAX_TOKENS = 32  # the answer after a trigger is a few tokens (Kojima et al. used 32)


class EvalConfig(BaseModel):
    """Everything that defines an eval run: the options of `selfprompt eval`, its --config file, and an
    experiment's `eval:` section (whose systems set model and conditions). Recorded in the manifest."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(default="default", description="Model: default, HF folder, GGUF file, adapter folder, hub id; "
                       "for the openai backend, the served model name.")
    backend: BackendName = Field(default="auto", description=BACKEND_HELP.format(embedded="hf"))
    base_url: str | None = Field(default=None, description="openai backend: server URL (else $OPENAI_BASE_URL).")
    api_key_env: str = Field(default="OPENAI_API_KEY", description="openai backend: environment variable holding "
                             "the key.")
    tasks: list[str] = Field(description="Comma-separated task names (see `selfprompt eval tasks`).",
                             json_schema_extra={"cli": {"split": ","}})
    conditions: list[str] = Field(default_factory=lambda: [DEFAULT_CONDITION], description="Comma-separated prompting "
                                  "conditions: " + ", ".join(CONDITIONS) + ".",
                                  json_schema_extra={"cli": {"split": ","}})
    data_dir: str | None = Field(default=None, description="Local data mirror (default: $SELFPROMPT_DATA_DIR).")
    out: str = Field(default="runs/eval", description="Output folder, one run per folder: rerunning with the same "
                     "tasks, conditions, limit and seed resumes; others are refused unless overwrite.")
    task_files: list[str] = Field(default_factory=list, description="Extra task YAML file (repeatable).",
                                  json_schema_extra={"cli": {"flags": ["--task-file"], "repeat": True}})
    limit: int | None = Field(default=None, ge=1, description="Items per task (a seeded random subset); None = all.")
    seed: int | None = Field(default=0, description="Seed of the item subset (None = the first `limit` items) "
                             "and of bootstrap resampling.")
    max_tokens: int = Field(default=256, ge=1, description="New tokens for the answering turn.")
    trigger_max_tokens: int = Field(default=TRIGGER_MAX_TOKENS, ge=1, description="New tokens after the trigger.")
    temperature: float = Field(default=0.0, ge=0.0, description="0 = greedy.")
    batch_size: int = Field(default=8, ge=1, description="Items per generate call and per cache append.")
    format: str = Field(default=DEFAULT_FORMAT.id, description="Self-prompt format used to parse roles.")
    no_trigger: bool = Field(default=False, description="Skip the second-pass trigger (regex extractors only).",
                             json_schema_extra={"cli": {"flags": ["--no-trigger"]}})
    sandbox_timeout_s: float = Field(default=10.0, gt=0, description="Wall time per HumanEval program, in seconds.")
    bootstrap_resamples: int = Field(default=2000, ge=100, description="Resamples for confidence intervals.")
    overwrite: bool = Field(default=False, description="Replace a run with another scope (tasks, conditions, "
                            "limit, seed) already in `out` instead of refusing; the content-keyed generation cache "
                            "is kept.", json_schema_extra={"cli": {"flags": ["--overwrite"]}})


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


class ItemResult(BaseModel):
    """One scored item: the raw evidence, the role, what was extracted and how, and correctness."""

    task: str
    condition: str
    id: str
    question: str
    reference: str
    role: str | None
    raw: str
    answer: str  # the answer part (role removed) the extractors read
    trigger_output: str | None
    extracted_strict: str | None
    extracted: str | None
    extractor: str | None
    correct_strict: bool
    correct: bool
    extraction_failed: bool  # nothing found and no explicit non-answer
    abstained: bool = False  # an explicit non-answer ("cannot be determined", a refusal): scored wrong
    format_held: bool | None = None
    problem: str | None = None
    execution: dict[str, Any] | None = None  # HumanEval: sandbox status, return code, output tail
    role_check: str | None = None  # model-written roles: "ok" or the failed role check


# --- generation ------------------------------------------------------------------------------------

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


def cache_key(backend: Backend, spec: TaskSpec, item: Item, condition: str, config: EvalConfig,
              prompts: dict[str, Any] | None = None) -> str:
    """sha256 of every input of one generation; `prompts` is condition_prompts(...) (computed if not given)."""
    trigger = None if config.no_trigger else spec.trigger
    parts = {
        "backend": backend.name, "model": backend.model_id, "condition": condition, "task": spec.name,
        "task_version": spec.version, "item": item.id, "question": item.question,
        "sampling": sampling_for(config).model_dump(), "trigger": trigger,
        "trigger_sampling": trigger_sampling(config).model_dump() if trigger else None,
        "format": config.format,
        "prompts": condition_prompts(condition, spec, config) if prompts is None else prompts,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def trigger_request(out: ConditionOutput, trigger: str, sampling: Sampling) -> ChatRequest:
    """Second pass (Kojima et al. 2022): the model's own output, then the trigger, continued."""
    prefix = out.assistant_prefix + out.raw.rstrip() + "\n" + trigger
    return ChatRequest(messages=out.messages, sampling=sampling, assistant_prefix=prefix)


def generate_batch(backend: Backend, spec: TaskSpec, items: list[Item], condition: str, keys: list[str],
                   config: EvalConfig) -> list[Generation]:
    fmt = get_format(config.format)
    outputs = get_condition(condition).answer(backend, [i.question for i in items], sampling_for(config), fmt=fmt,
                                              manual_role=task_manual_role(spec, condition))
    trigger = None if config.no_trigger else spec.trigger
    triggered: list[str | None] = [None] * len(items)
    if trigger:
        responses = backend.generate([trigger_request(o, trigger, trigger_sampling(config)) for o in outputs])
        triggered = [r.text for r in responses]
        for o, r in zip(outputs, responses):
            o.usage = o.usage + r.usage
    return [
        Generation(key=k, task=spec.name, task_version=spec.version, condition=condition, item_id=i.id,
                   model=backend.model_id, role=o.role, answer=o.answer, raw=o.raw, format_held=o.format_held,
                   problem=o.problem, trigger_output=t, finish_reason=o.finish_reason, usage=o.usage,
                   messages=[m.model_dump() for m in o.messages], assistant_prefix=o.assistant_prefix,
                   role_check=o.role_check)
        for i, k, o, t in zip(items, keys, outputs, triggered)
    ]


def generations_path(out: Path, task: str, condition: str) -> Path:
    return out / "generations" / f"{task}__{condition}.jsonl"


def run_generations(backend: Backend, spec: TaskSpec, items: list[Item], condition: str, config: EvalConfig,
                    progress: Callable[[int, bool], None] = lambda n, cached: None) -> list[Generation]:
    """Generate what the cache lacks, appending each batch durably; return one generation per item.

    `progress(n, cached)` hears of the items served from the cache first (cached=True, possibly 0, so a
    progress line opens before the first batch), then of each batch generated (cached=False)."""
    path = generations_path(Path(config.out), spec.name, condition)
    with JsonlAppender(path) as appender:  # opening first cuts a torn tail left by a kill
        cached = {g.key: g for g in _read_generations(path)}
        prompts = condition_prompts(condition, spec, config)
        keys = [cache_key(backend, spec, i, condition, config, prompts) for i in items]
        todo = list({k: (i, k) for i, k in zip(items, keys) if k not in cached}.values())
        progress(len(items) - len(todo), True)
        for batch in _batches(todo, config.batch_size):
            for g in generate_batch(backend, spec, [i for i, _ in batch], condition, [k for _, k in batch], config):
                appender.append(g)
                cached[g.key] = g
            progress(len(batch), False)
    return [cached[k] for k in keys]


def _read_generations(path: Path) -> Iterable[Generation]:
    if path.exists():
        for _, obj in iter_json_lines(path):
            yield Generation.model_validate(obj)


def _batches(rows: list, size: int) -> Iterable[list]:
    it = iter(rows)
    while batch := list(itertools.islice(it, size)):
        yield batch


# --- scoring ---------------------------------------------------------------------------------------

def score_item(spec: TaskSpec, item: Item, answer: str, trigger_output: str | None,
               limits: SandboxLimits | None = None) -> dict[str, Any]:
    """Extract and judge one answer (role already removed). Shared by `eval` and `eval score`."""
    x = ExtractInput(answer=answer, trigger_output=trigger_output, choices=item.choices,
                     entry_point=item.extra.get("entry_point"), question=item.question, trigger=spec.trigger)
    ex = extract(spec.extractors, x)
    execution = None
    if spec.answer_type == "code":
        correct, execution = _run_code(item, ex.lenient, limits)
        correct_strict = correct if ex.strict == ex.lenient else _run_code(item, ex.strict, limits)[0]
    else:
        correct = is_correct(spec.answer_type, ex.lenient, item.answer)
        correct_strict = is_correct(spec.answer_type, ex.strict, item.answer)
    return {"extracted_strict": ex.strict, "extracted": ex.lenient, "extractor": ex.extractor,
            "correct_strict": correct_strict, "correct": correct, "extraction_failed": ex.status == "failed",
            "abstained": ex.abstained, "execution": execution}


def _run_code(item: Item, code: str | None, limits: SandboxLimits | None) -> tuple[bool, dict | None]:
    if code is None:
        return False, None
    result = check_humaneval(item.extra, code, limits or SandboxLimits())
    return result.passed, {"status": result.status, "returncode": result.returncode,
                           "output": result.output[-1000:], "isolation": result.isolation}


def score_generations(spec: TaskSpec, items: list[Item], gens: list[Generation], condition: str,
                      limits: SandboxLimits) -> list[ItemResult]:
    results = []
    for item, g in zip(items, gens):
        scored = score_item(spec, item, g.answer, g.trigger_output, limits)
        results.append(ItemResult(task=spec.name, condition=condition, id=item.id, question=item.question,
                                  reference=item.answer, role=g.role, raw=g.raw, answer=g.answer,
                                  trigger_output=g.trigger_output, format_held=g.format_held,
                                  problem=g.problem, role_check=g.role_check, **scored))
    return results


# --- summaries -------------------------------------------------------------------------------------

def summarize(results: list[ItemResult], resamples: int, seed: int) -> dict[str, Any]:
    boot = {"resamples": resamples, "seed": seed}
    held = [r.format_held for r in results if r.format_held is not None]
    return {
        "n": len(results),
        "strict": accuracy([r.correct_strict for r in results], **boot),
        "lenient": accuracy([r.correct for r in results], **boot),
        "extraction_failure_rate": sum(r.extraction_failed for r in results) / len(results) if results else None,
        "abstained_rate": sum(r.abstained for r in results) / len(results) if results else None,
        "format_held_rate": sum(held) / len(held) if held else None,
        "extractors": _count(r.extractor or "none" for r in results),
        # icl-self-prompt: written roles replaced by the fallback; self-prompt: roles that failed the checks
        "role_fallbacks": sum(r.problem == "role-fallback" for r in results),
        "roles_failing_checks": sum(r.role_check not in (None, "ok") for r in results),
    }


def compare(by_condition: dict[str, list[ItemResult]], resamples: int, seed: int) -> list[dict[str, Any]]:
    """Every pair of conditions (a, b) on the same items: b - a, with CI and McNemar p-value."""
    boot = {"resamples": resamples, "seed": seed}
    out = []
    for a, b in itertools.combinations(by_condition, 2):
        ra, rb = by_condition[a], by_condition[b]
        out.append({"a": a, "b": b,
                    "strict": paired_comparison([r.correct_strict for r in ra], [r.correct_strict for r in rb], **boot),
                    "lenient": paired_comparison([r.correct for r in ra], [r.correct for r in rb], **boot)})
    return out


def _count(values: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return counts


def markdown_table(results: dict[str, Any]) -> str:
    lines = ["| task | condition | n | strict acc [95% CI] | lenient acc [95% CI] | extraction failures | abstained |",
             "| --- | --- | ---: | --- | --- | ---: | ---: |"]
    for task, entry in results["tasks"].items():
        for cond, s in entry["conditions"].items():
            lines.append(f"| {task} | {cond} | {s['n']} | {_acc(s['strict'])} | {_acc(s['lenient'])} | "
                         f"{s['extraction_failure_rate']:.1%} | {s.get('abstained_rate') or 0:.1%} |")
    comparisons = [(t, c) for t, e in results["tasks"].items() for c in e["comparisons"]]
    if comparisons:
        lines += ["", "| task | a → b | Δ lenient [95% CI] | McNemar p (lenient) | Δ strict [95% CI] | McNemar p (strict) |",
                  "| --- | --- | --- | ---: | --- | ---: |"]
        for task, c in comparisons:
            lines.append(f"| {task} | {c['a']} → {c['b']} | {_diff(c['lenient'])} | {c['lenient']['mcnemar']['p_value']:.3g} | "
                         f"{_diff(c['strict'])} | {c['strict']['mcnemar']['p_value']:.3g} |")
    return "\n".join(lines) + "\n"


def _acc(a: dict) -> str:
    return f"{a['accuracy']:.1%} [{a['ci_low']:.1%}, {a['ci_high']:.1%}]"


def _diff(d: dict) -> str:
    return f"{d['difference']:+.1%} [{d['ci_low']:+.1%}, {d['ci_high']:+.1%}]"


# --- one run per folder -------------------------------------------------------------------------------

SETTINGS_FILE = "settings.json"
RESULT_FILES = ("results.json", "results.md", "manifest.json")  # rewritten at the end of every run
RUN_FILES = (*RESULT_FILES, "items", "generations")  # what marks a folder as an eval folder
SCOPE_FIELDS = ("tasks", "conditions", "limit", "seed")


def run_scope(config: EvalConfig) -> dict[str, Any]:
    """Which results a run writes: its tasks and conditions, and which items (limit and seed pick them).

    Everything else that changes an output (the model, by content; sampling; prompts; format; trigger) is
    in each generation's cache key instead: a rerun with other values generates what they change and
    rewrites every result, so the folder still holds one run.
    """
    return {name: getattr(config, name) for name in SCOPE_FIELDS}


def check_output(out: Path, scope: dict[str, Any], overwrite: bool) -> None:
    """Refuse an `out` that holds another run: another scope in its settings.json, or eval files without one.

    Raises ConfigError (or DataError for an unreadable settings.json) unless `overwrite`; changes nothing.
    """
    path = out / SETTINGS_FILE
    if overwrite:
        return
    if path.exists():
        try:
            previous = json.loads(path.read_text(encoding="utf-8-sig"))
        except json.JSONDecodeError as e:
            raise DataError(str(path), e.lineno, None, f"invalid JSON ({e.msg}); use --overwrite or another --out")
        if previous != scope:
            changed = _differences(previous if isinstance(previous, dict) else {}, scope)
            raise ConfigError(f"{out} holds a run with other settings ({'; '.join(changed)}); one folder holds one "
                              "run: use another --out, or --overwrite to replace it (the same settings resume it)")
    elif any((out / name).exists() for name in RUN_FILES):
        raise ConfigError(f"{out} already holds eval results of unknown settings (no {SETTINGS_FILE}); "
                          "use another --out, or --overwrite to replace them")


def claim_output(out: Path, scope: dict[str, Any], overwrite: bool) -> None:
    """Make `out` this run's folder, holding nothing of an earlier run but the content-keyed generation cache.

    Same scope (settings.json): the run resumes. Another scope, or eval files without a settings.json:
    refused by check_output unless `overwrite`. Either way the derived files (results, items, manifest)
    are removed before anything is generated, so a run that stops half way leaves no earlier run's
    results beside its own; they are written again from the cache at the end.
    """
    check_output(out, scope, overwrite)
    for name in RESULT_FILES:
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / "items", ignore_errors=True)
    write_json(out / SETTINGS_FILE, scope)


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """'name: old -> new' for each setting that differs."""
    return [f"{k}: {json.dumps(old.get(k))} -> {json.dumps(new.get(k))}"
            for k in sorted(old.keys() | new.keys()) if old.get(k) != new.get(k)]


# --- the run ----------------------------------------------------------------------------------------

def run_eval(config: EvalConfig, backend: Backend | None = None,
             progress: Callable[[str, int, int, bool], None] | None = None) -> dict[str, Any]:
    """Run (or resume) an eval; returns the results dict also written to results.json.

    `progress(label, n, total, cached)`: n more items of `total` done for "task/condition" `label`,
    from the generation cache (cached) or generated now (see selfprompt.progress.PhasedProgress)."""
    from selfprompt.data.mirror import resolve_data_dir

    specs = get_tasks(config.tasks, config.task_files)
    data_dir = str(resolve_data_dir(config.data_dir))
    for spec in specs:
        for condition in config.conditions:
            get_condition(condition).check(task_manual_role(spec, condition))
    get_format(config.format)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    claim_output(out, run_scope(config), config.overwrite)
    own_backend = backend is None
    if backend is None:
        from selfprompt.generate.backends import build_backend

        backend = build_backend(config.model, config.backend, base_url=config.base_url,
                                api_key_env=config.api_key_env, embedded="hf", batch_size=config.batch_size)
    limits = SandboxLimits(timeout_s=config.sandbox_timeout_s)
    results: dict[str, Any] = {"model": backend.model_id, "backend": backend.name, "tasks": {}}
    data_files: list[Path] = []
    try:
        for spec in specs:
            items = select_items(load_items(spec, data_dir), config.limit, config.seed)
            data_files += task_files(spec, data_dir)
            per_condition: dict[str, list[ItemResult]] = {}
            for condition in config.conditions:
                label = f"{spec.name}/{condition}"
                tick = ((lambda n, c, label=label: progress(label, n, len(items), c)) if progress
                        else (lambda n, c: None))
                gens = run_generations(backend, spec, items, condition, config, tick)
                scored = score_generations(spec, items, gens, condition, limits)
                write_records(out / "items" / f"{spec.name}__{condition}.jsonl", scored)
                per_condition[condition] = scored
            seed = config.seed or 0
            results["tasks"][spec.name] = {
                "version": spec.version, "metric": spec.metric, "n_items": len(items),
                "conditions": {c: summarize(r, config.bootstrap_resamples, seed) for c, r in per_condition.items()},
                "comparisons": compare(per_condition, config.bootstrap_resamples, seed),
            }
    finally:
        if own_backend:
            backend.close()
    write_json(out / "results.json", results)
    (out / "results.md").write_text(markdown_table(results), encoding="utf-8")
    write_manifest(out, stage="eval", config=config.model_dump(), data_files=sorted(set(data_files)),
                   seed=config.seed, extra={"model_id": backend.model_id, "backend": backend.name,
                                            "decisions": backend.decisions,
                                            "task_versions": {s.name: s.version for s in specs},
                                            "task_files": {s.name: s.source_path for s in specs},
                                            "roles_version": roles_version()})
    return results
