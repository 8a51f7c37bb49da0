"""Collect a run's file outputs (eval folders, judge folders, manifests) into one report model.

Inputs are the files other stages write, read as they are:

    eval folder   results.json {"tasks": {task: {"conditions": {...}, ...}}}, items/<task>__<condition>.jsonl,
                  manifest.json
    judge folder  results.json {win, tie, loss, ...}, judgments.jsonl, manifest.json

A *system* is one (eval label, condition) pair, e.g. "self-prompt" (the tuned model under the
self-prompt condition) or "baseline" (the LIMA-tuned model, plain). Deltas compare every system
with the baseline system item by item (paired bootstrap CI and McNemar, from evaluate.stats).
The baseline is declared, by `--baseline` or by the experiment; it is never guessed.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfprompt.errors import ConfigError, DataError
from selfprompt.generate.conditions import find_condition
from selfprompt.jsonl import iter_json_lines

EXPERIMENT_INDEX = "experiment.json"  # written by `selfprompt run` at the run root
SIGNIFICANCE = 0.05
TOP_ROLES = 8
EXAMPLES_PER_TASK = 3

_EXPERT = re.compile(
    r"you are\s+(?:now\s+)?(?:an?\s+|the\s+)?(.+?)(?=\s+(?:who|with|that|and|specializ\w*|known|working)\b|[,.;:!?\n(]|$)",
    re.IGNORECASE,
)


@dataclass
class System:
    name: str  # shown in tables and plots
    eval_label: str
    condition: str
    items: dict[str, dict[str, dict[str, Any]]]  # task -> item id -> item record
    summary: dict[str, dict[str, Any]]  # task -> the eval's per-condition summary


@dataclass
class Report:
    title: str
    systems: list[System] = field(default_factory=list)
    baseline: str | None = None
    tasks: list[str] = field(default_factory=list)
    judges: dict[str, dict[str, Any]] = field(default_factory=dict)  # label -> {"results", "items"}
    manifests: dict[str, Any] = field(default_factory=dict)  # input name -> manifest json
    sources: dict[str, str] = field(default_factory=dict)  # input name -> folder

    def system(self, name: str) -> System:
        return next(s for s in self.systems if s.name == name)


# ---------------------------------------------------------------------------------------------
# Loading


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise DataError(str(path), None, None, "file not found") from None
    except json.JSONDecodeError as e:
        raise DataError(str(path), e.lineno, None, f"invalid JSON ({e.msg})") from None


def _manifest(folder: Path) -> Any:
    path = folder / "manifest.json"
    return _read_json(path) if path.exists() else None


def load_eval(report: Report, label: str, folder: Path) -> None:
    results = _read_json(folder / "results.json")
    if "tasks" not in results:
        raise DataError(str(folder / "results.json"), None, "tasks", "missing: not an eval results file")
    # In the eval's own order (its --conditions), never re-sorted: order carries no meaning of "baseline".
    conditions = list(dict.fromkeys(c for entry in results["tasks"].values() for c in entry.get("conditions", {})))
    for condition in conditions:
        name = label if len(conditions) == 1 else f"{label}/{condition}"
        system = System(name, label, condition, {}, {})
        for task, entry in results["tasks"].items():
            if condition not in entry.get("conditions", {}):
                continue
            system.summary[task] = entry["conditions"][condition]
            items_file = folder / "items" / f"{task}__{condition}.jsonl"
            system.items[task] = (
                {str(obj["id"]): obj for _, obj in iter_json_lines(items_file)} if items_file.exists() else {}
            )
            if task not in report.tasks:
                report.tasks.append(task)
        report.systems.append(system)
    report.manifests[f"eval {label}"] = _manifest(folder)
    report.sources[f"eval {label}"] = str(folder)


def load_judge(report: Report, label: str, folder: Path) -> None:
    results = _read_json(folder / "results.json")
    if "win" not in results:
        raise DataError(str(folder / "results.json"), None, "win", "missing: not a judge results file")
    items_file = folder / "judgments.jsonl"
    items = [obj for _, obj in iter_json_lines(items_file)] if items_file.exists() else []
    report.judges[label] = {"results": results, "items": items}
    report.manifests[f"judge {label}"] = _manifest(folder)
    report.sources[f"judge {label}"] = str(folder)


def load_run(
    run: Path,
    evals: dict[str, Path] | None = None,
    judges: dict[str, Path] | None = None,
    baseline: str | None = None,
    title: str | None = None,
) -> Report:
    """A run folder (experiment index, eval folder or judge folder) plus any extra inputs."""
    evals, judges = dict(evals or {}), dict(judges or {})
    index_path = run / EXPERIMENT_INDEX
    index: dict[str, Any] = {}
    if index_path.exists():
        index = _read_json(index_path)
        evals = {**{k: run / v for k, v in index.get("evals", {}).items()}, **evals}
        judges = {**{k: run / v for k, v in index.get("judges", {}).items()}, **judges}
    elif (run / "results.json").exists():
        kind = _read_json(run / "results.json")
        (evals if "tasks" in kind else judges).setdefault(run.name, run)
    elif not (evals or judges):
        raise ConfigError(f"{run}: no {EXPERIMENT_INDEX} and no results.json; nothing to report")
    report = Report(title=title or index.get("title") or f"selfprompt report: {run.name}")
    for label, folder in evals.items():
        load_eval(report, label, folder)
    for label, folder in judges.items():
        load_judge(report, label, folder)
    if index and (run / "manifest.json").exists():
        report.manifests["experiment"] = _manifest(run)
    report.baseline = choose_baseline(report.systems, baseline, index.get("baseline"), run / EXPERIMENT_INDEX)
    return report


def choose_baseline(systems: list[System], given: str | None, declared: str | None, index_path: Path) -> str | None:
    """The system every other one is compared with: the one the user (`--baseline`) or the experiment
    (`baseline:` in its file, recorded in experiment.json) names, never a guess.

    A name may be a system ('base/plain'), an eval label with one system ('base') or a condition that one
    system has ('plain'). With a single system there is nothing to compare and no baseline is needed.
    Raises ConfigError when the name matches no system or several, or when none is named and there are
    several candidates; the message lists them.
    """
    names = [s.name for s in systems]
    wanted = given or declared
    if not wanted:
        if len(systems) <= 1:
            return names[0] if names else None
        raise ConfigError(
            f"no baseline declared and {len(names)} candidates: {', '.join(names)}; pass --baseline "
            f"NAME, or declare `baseline:` in the experiment file"
        )
    source = "--baseline" if given else f"the experiment's baseline ({index_path})"
    for matches in (
        [s for s in systems if s.name == wanted],
        [s for s in systems if s.eval_label == wanted],
        [s for s in systems if s.condition == wanted],
    ):
        if len(matches) == 1:
            return matches[0].name
        if len(matches) > 1:
            raise ConfigError(
                f"{source} '{wanted}' matches {len(matches)} systems: "
                f"{', '.join(s.name for s in matches)}; name one of them"
            )
    raise ConfigError(f"{source} '{wanted}' is not one of the systems: {', '.join(names)}")


# ---------------------------------------------------------------------------------------------
# Derived tables


def accuracy_rows(report: Report) -> list[dict[str, Any]]:
    rows = []
    for task in report.tasks:
        for s in report.systems:
            if task in s.summary:
                summary = s.summary[task]
                rows.append(
                    {
                        "task": task,
                        "system": s.name,
                        "n": summary["n"],
                        "lenient": summary["lenient"],
                        "strict": summary["strict"],
                        "extraction_failure_rate": summary.get("extraction_failure_rate"),
                        "format_held_rate": summary.get("format_held_rate"),
                    }
                )
    return rows


def delta_rows(report: Report) -> list[dict[str, Any]]:
    """Every system minus the baseline, per task, paired by item id (lenient and strict)."""
    from selfprompt.evaluate.stats import paired_comparison

    if report.baseline is None:
        return []
    base = report.system(report.baseline)
    rows = []
    for s in report.systems:
        if s.name == base.name:
            continue
        for task in report.tasks:
            ids = [i for i in base.items.get(task, {}) if i in s.items.get(task, {})]
            if not ids:
                continue
            row: dict[str, Any] = {"task": task, "system": s.name, "baseline": base.name, "n": len(ids)}
            for metric, key in (("lenient", "correct"), ("strict", "correct_strict")):
                cmp = paired_comparison(
                    [bool(base.items[task][i][key]) for i in ids], [bool(s.items[task][i][key]) for i in ids], seed=0
                )
                p = cmp["mcnemar"]["p_value"]
                row[metric] = {**cmp, "p_value": p, "significant": bool(p < SIGNIFICANCE)}
            rows.append(row)
    return rows


def expert_of(role: str) -> str:
    """The expert a role prompt names: 'From now on, you are an expert chef who ...' -> 'expert chef'."""
    match = _EXPERT.search(role)
    words = (match.group(1) if match else role).split()[:6]
    return " ".join(words).strip().lower() or "(empty)"


def role_distribution(report: Report) -> dict[str, dict[str, list[tuple[str, int]]]]:
    """system -> task -> most common experts (with counts), for systems whose items carry roles."""
    out: dict[str, dict[str, list[tuple[str, int]]]] = {}
    for s in report.systems:
        per_task = {}
        for task, items in s.items.items():
            roles = [it.get("role") for it in items.values() if it.get("role")]
            condition = find_condition(s.condition)  # None: a condition of another tool, its roles its own
            if roles and not (condition and condition.needs_manual_role):  # manual roles are ours, not the model's
                per_task[task] = Counter(expert_of(r) for r in roles).most_common(TOP_ROLES)
        if per_task:
            out[s.name] = per_task
    return out


def example_rows(report: Report) -> list[dict[str, Any]]:
    """A few items per task, every system side by side."""
    rows = []
    for task in report.tasks:
        with_items = [s for s in report.systems if s.items.get(task)]
        if not with_items:
            continue
        ids = list(with_items[0].items[task])[:EXAMPLES_PER_TASK]
        for i in ids:
            first = with_items[0].items[task][i]
            cells = []
            for s in with_items:
                it = s.items[task].get(i)
                if it is not None:
                    cells.append(
                        {
                            "system": s.name,
                            "role": it.get("role"),
                            "answer": it.get("answer") or it.get("raw", ""),
                            "extracted": it.get("extracted"),
                            "correct": it.get("correct"),
                        }
                    )
            rows.append(
                {
                    "task": task,
                    "id": i,
                    "question": first.get("question", ""),
                    "reference": first.get("reference", ""),
                    "cells": cells,
                }
            )
    return rows


def fmt_pct(value: float | None) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.1%}"


def fmt_ci(block: dict[str, Any], key: str = "accuracy") -> str:
    value, low, high = block.get(key), block.get("ci_low"), block.get("ci_high")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    sign = "+" if key == "difference" else ""
    return f"{value:{sign}.1%} [{low:{sign}.1%}, {high:{sign}.1%}]"
