"""One eval run per output folder: its scope (settings.json), the check that refuses another run's folder,
and the claim that clears an earlier run's derived files while keeping the content-keyed generation cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from selfprompt.errors import ConfigError, DataError
from selfprompt.evaluate.config import EvalConfig
from selfprompt.jsonl import write_json

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
            raise DataError(
                str(path), e.lineno, None, f"invalid JSON ({e.msg}); use --overwrite or another --out"
            ) from None
        if previous != scope:
            changed = _differences(previous if isinstance(previous, dict) else {}, scope)
            raise ConfigError(
                f"{out} holds a run with other settings ({'; '.join(changed)}); one folder holds one "
                "run: use another --out, or --overwrite to replace it (the same settings resume it)"
            )
    elif any((out / name).exists() for name in RUN_FILES):
        raise ConfigError(
            f"{out} already holds eval results of unknown settings (no {SETTINGS_FILE}); "
            "use another --out, or --overwrite to replace them"
        )


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
    return [
        f"{k}: {json.dumps(old.get(k))} -> {json.dumps(new.get(k))}"
        for k in sorted(old.keys() | new.keys())
        if old.get(k) != new.get(k)
    ]
