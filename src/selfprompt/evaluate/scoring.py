"""Eval's scoring: extract and judge each answer (HumanEval through the sandbox), the per-item records, and
the summaries and paired comparisons of results.json. Shared by `eval` and `eval score`."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel

from selfprompt.evaluate.extract import ExtractInput, extract, is_correct
from selfprompt.evaluate.generation import Generation
from selfprompt.evaluate.sandbox import SandboxLimits, check_humaneval
from selfprompt.evaluate.stats import accuracy, paired_comparison
from selfprompt.evaluate.tasks import Item, TaskSpec


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


def score_item(
    spec: TaskSpec, item: Item, answer: str, trigger_output: str | None, limits: SandboxLimits | None = None
) -> dict[str, Any]:
    """Extract and judge one answer (role already removed). Shared by `eval` and `eval score`."""
    x = ExtractInput(
        answer=answer,
        trigger_output=trigger_output,
        choices=item.choices,
        entry_point=item.extra.get("entry_point"),
        question=item.question,
        trigger=spec.trigger,
    )
    ex = extract(spec.extractors, x)
    execution = None
    if spec.answer_type == "code":
        correct, execution = _run_code(item, ex.lenient, limits)
        correct_strict = correct if ex.strict == ex.lenient else _run_code(item, ex.strict, limits)[0]
    else:
        correct = is_correct(spec.answer_type, ex.lenient, item.answer)
        correct_strict = is_correct(spec.answer_type, ex.strict, item.answer)
    return {
        "extracted_strict": ex.strict,
        "extracted": ex.lenient,
        "extractor": ex.extractor,
        "correct_strict": correct_strict,
        "correct": correct,
        "extraction_failed": ex.status == "failed",
        "abstained": ex.abstained,
        "execution": execution,
    }


def _run_code(item: Item, code: str | None, limits: SandboxLimits | None) -> tuple[bool, dict | None]:
    if code is None:
        return False, None
    result = check_humaneval(item.extra, code, limits or SandboxLimits())
    return result.passed, {
        "status": result.status,
        "returncode": result.returncode,
        "output": result.output[-1000:],
        "isolation": result.isolation,
    }


def score_generations(
    spec: TaskSpec, items: list[Item], gens: list[Generation], condition: str, limits: SandboxLimits
) -> list[ItemResult]:
    results = []
    for item, g in zip(items, gens):
        scored = score_item(spec, item, g.answer, g.trigger_output, limits)
        results.append(
            ItemResult(
                task=spec.name,
                condition=condition,
                id=item.id,
                question=item.question,
                reference=item.answer,
                role=g.role,
                raw=g.raw,
                answer=g.answer,
                trigger_output=g.trigger_output,
                format_held=g.format_held,
                problem=g.problem,
                role_check=g.role_check,
                **scored,
            )
        )
    return results


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
        out.append(
            {
                "a": a,
                "b": b,
                "strict": paired_comparison([r.correct_strict for r in ra], [r.correct_strict for r in rb], **boot),
                "lenient": paired_comparison([r.correct for r in ra], [r.correct for r in rb], **boot),
            }
        )
    return out


def summarize_task(
    spec: TaskSpec, n_items: int, per_condition: dict[str, list[ItemResult]], resamples: int, seed: int
) -> dict[str, Any]:
    """One task's entry of results.json: its version and metric, a summary per condition, every comparison."""
    return {
        "version": spec.version,
        "metric": spec.metric,
        "n_items": n_items,
        "conditions": {c: summarize(r, resamples, seed) for c, r in per_condition.items()},
        "comparisons": compare(per_condition, resamples, seed),
    }


def _count(values: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return counts
