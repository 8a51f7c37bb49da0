"""`selfprompt eval`: ask a model every task's questions under every condition, then score.

Layout of `--out DIR`:

    settings.json                           the run's scope: tasks, conditions, limit, seed (see below)
    generations/<task>__<condition>.jsonl   append-only generation cache (one row per item; resumable)
    items/<task>__<condition>.jsonl         scored per-item records (rewritten from the cache each run)
    results.json, results.md                accuracy with CIs, extraction failures, paired comparisons
    manifest.json                           config, versions, data hashes, seed

A generation row is keyed by sha256 of every input that changes it (see evaluate/generation.py); a
rerun, or a run resumed after a kill, generates only the keys the cache lacks.

The jobs live in their own modules: config.py (EvalConfig), generation.py (cache key, keyed cache,
trigger pass), scoring.py (extraction, per-item records, summaries, comparisons), render.py
(results.md), rundir.py (one run per folder). This module holds the run itself and re-exports their
public names for callers that import them from here.

A folder holds one run. Its scope (settings.json: tasks, conditions, limit, seed) says which
results it writes; a rerun with the same scope resumes, one with another scope is refused, or with
`overwrite` replaces the run. Other inputs (another model, sampling, an edited prompt) are in the
generation keys: a rerun with them generates anew and rewrites every result. Results, items and
manifest are removed when a run starts and written from the cache at its end, so nothing of an
earlier run stays beside a new one; the generation cache is kept, since its keys tell runs apart.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from selfprompt.evaluate.config import TRIGGER_MAX_TOKENS, EvalConfig
from selfprompt.evaluate.generation import (
    Generation,
    cache_key,
    condition_prompts,
    generations_path,
    run_generations,
    sampling_for,
    task_manual_role,
    trigger_sampling,
)
from selfprompt.evaluate.render import markdown_table
from selfprompt.evaluate.roles import roles_version
from selfprompt.evaluate.rundir import SETTINGS_FILE, check_output, claim_output, run_scope
from selfprompt.evaluate.sandbox import SandboxLimits
from selfprompt.evaluate.scoring import (
    ItemResult,
    compare,
    score_generations,
    score_item,
    summarize,
    summarize_task,
)
from selfprompt.evaluate.tasks import TaskSpec, get_tasks, load_items, select_items, task_files
from selfprompt.format import get_format
from selfprompt.generate.backends.base import Backend
from selfprompt.generate.conditions import get_condition
from selfprompt.generate.servers import SERVER_LOG, check_prefill, check_served, condition_needs
from selfprompt.jsonl import write_json, write_records
from selfprompt.manifest import write_manifest

__all__ = [  # the names src/, tests/ and bench/ import from here
    "TRIGGER_MAX_TOKENS",
    "EvalConfig",
    "Generation",
    "ItemResult",
    "SETTINGS_FILE",
    "cache_key",
    "check_output",
    "claim_output",
    "compare",
    "condition_prompts",
    "generations_path",
    "markdown_table",
    "run_eval",
    "run_generations",
    "run_scope",
    "sampling_for",
    "score_item",
    "summarize",
    "task_manual_role",
    "trigger_sampling",
]


def run_eval(
    config: EvalConfig, backend: Backend | None = None, progress: Callable[[str, int, int, bool], None] | None = None
) -> dict[str, Any]:
    """Run (or resume) an eval: setup, then per task its data, generations and scores, then the files.
    Returns the results dict also written to results.json.

    `progress(label, n, total, cached)`: n more items of `total` done for "task/condition" `label`,
    from the generation cache (cached) or generated now (see selfprompt.progress.PhasedProgress).
    Raises ConfigError / DataError for bad settings or data before a model is loaded."""
    specs, data_dir = _check_settings(config)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    claim_output(out, run_scope(config), config.overwrite)
    if backend is not None:
        return _run(config, specs, data_dir, backend, progress)
    # A batch's requests are in flight together; unset, a remote backend's batches are 8 (generation.py).
    with config.open_backend(out / SERVER_LOG, concurrency=config.batch_size or 8, batch_size=config.batch_size) as own:
        return _run(config, specs, data_dir, own, progress)


def _run(
    config: EvalConfig,
    specs: list[TaskSpec],
    data_dir: str,
    backend: Backend,
    progress: Callable[[str, int, int, bool], None] | None,
) -> dict[str, Any]:
    out = Path(config.out)
    limits = SandboxLimits(timeout_s=config.sandbox_timeout_s)
    results: dict[str, Any] = {"model": backend.model_id, "backend": backend.name, "tasks": {}}
    data_files: list[Path] = []
    for spec in specs:
        items = select_items(load_items(spec, data_dir), config.limit, config.seed)
        data_files += task_files(spec, data_dir)
        per_condition: dict[str, list[ItemResult]] = {}
        for condition in config.conditions:
            tick = _ticker(progress, f"{spec.name}/{condition}", len(items))
            gens = run_generations(backend, spec, items, condition, config, tick)
            per_condition[condition] = score_generations(spec, items, gens, condition, limits)
            write_records(out / "items" / f"{spec.name}__{condition}.jsonl", per_condition[condition])
        results["tasks"][spec.name] = summarize_task(
            spec, len(items), per_condition, config.bootstrap_resamples, config.seed or 0
        )
    write_json(out / "results.json", results)
    (out / "results.md").write_text(markdown_table(results), encoding="utf-8")
    write_manifest(
        out,
        stage="eval",
        config=config.model_dump(),
        data_files=sorted(set(data_files)),
        seed=config.seed,
        extra={
            "model_id": backend.model_id,
            "backend": backend.name,
            "decisions": backend.decisions,
            "task_versions": {s.name: s.version for s in specs},
            "task_files": {s.name: s.source_path for s in specs},
            "roles_version": roles_version(),
        },
    )
    return results


def _check_settings(config: EvalConfig) -> tuple[list[TaskSpec], str]:
    """The tasks and the data folder, with every condition and the format checked: all before a model loads."""
    from selfprompt.data.mirror import resolve_data_dir

    specs = get_tasks(config.tasks, config.task_files)
    data_dir = str(resolve_data_dir(config.data_dir))
    for spec in specs:
        for condition in config.conditions:
            get_condition(condition).check(task_manual_role(spec, condition))
    get_format(config.format)
    check_server(config, specs)
    return specs, data_dir


def check_server(config: EvalConfig, specs: list[TaskSpec] | None = None) -> None:
    """Refuse, before it starts, a server that cannot run these conditions and trigger passes (ConfigError)."""
    if config.server is None:
        return
    check_served(config.server, config.backend, config.base_url)
    specs = get_tasks(config.tasks, config.task_files) if specs is None else specs
    needs = {k: v for c in config.conditions for k, v in condition_needs(c).items()}
    with_trigger = [s.name for s in specs if s.trigger and not config.no_trigger]
    if with_trigger:
        needs[f"the trigger pass of {', '.join(with_trigger)}"] = "prefill"
    check_prefill(config.server, needs)


def _ticker(
    progress: Callable[[str, int, int, bool], None] | None, label: str, total: int
) -> Callable[[int, bool], None]:
    """run_generations' progress(n, cached) for one task/condition, as run_eval's progress hears it."""
    if progress is None:
        return lambda n, cached: None
    return lambda n, cached: progress(label, n, total, cached)
