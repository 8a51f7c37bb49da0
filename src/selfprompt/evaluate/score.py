"""`selfprompt eval score`: score predictions from any source with the same extractors.

Input: JSONL rows `{"task": ..., "id": ..., "output": ..., "trigger_output": ... (optional),
"condition": ... (optional label, default "external")}`. `output` is the model's whole text; under the
self-prompt conditions the role is parsed out with the self-prompt format first, exactly as in
`selfprompt eval`; under the other known conditions the whole text is the answer; under a label of
another tool only a tagged role is taken out. Rows with
different `condition` labels are compared pairwise on the items they share.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from selfprompt.errors import DataError
from selfprompt.evaluate.render import markdown_table
from selfprompt.evaluate.sandbox import SandboxLimits
from selfprompt.evaluate.scoring import ItemResult, compare, score_item, summarize
from selfprompt.evaluate.tasks import Item, load_items, task_files
from selfprompt.format import DEFAULT_FORMAT, get_format
from selfprompt.jsonl import iter_json_lines, validation_error, write_json, write_records
from selfprompt.manifest import write_manifest


class Prediction(BaseModel):
    model_config = ConfigDict(extra="ignore")  # other systems' files carry their own extra fields

    task: str = Field(description="Task name from the registry.")
    id: str = Field(description="Item id as `selfprompt eval` writes it (e.g. gsm8k-12, HumanEval/3).")
    output: str = Field(description="The model's full output (role and answer).")
    trigger_output: str | None = Field(default=None, description="Continuation after the task's trigger, if run.")
    condition: str = Field(default="external", description="Label of the system/condition that produced it.")


def read_predictions(path: Path, known_tasks: set[str]) -> list[tuple[int, Prediction]]:
    """(line number, row) pairs. DataError (file, line, field) for a bad row, an unknown task, or a second row
    for the same (task, condition, id): each item is scored once per condition, never counted twice."""
    rows = []
    seen: dict[tuple[str, str, str], int] = {}
    for number, obj in iter_json_lines(path):
        try:
            row = Prediction.model_validate(obj)
        except ValidationError as e:
            raise validation_error(path, number, e) from None
        if row.task not in known_tasks:
            raise DataError(
                str(path), number, "task", f"unknown task '{row.task}'; valid: {', '.join(sorted(known_tasks))}"
            )
        key = (row.task, row.condition, row.id)
        if key in seen:
            raise DataError(
                str(path),
                number,
                "id",
                f"duplicate prediction for task '{row.task}', condition "
                f"'{row.condition}', id '{row.id}' (first on line {seen[key]})",
            )
        seen[key] = number
        rows.append((number, row))
    return rows


def score_predictions(
    predictions: str | Path,
    data_dir: str | Path,
    out: str | Path,
    task_file_paths: list[str] = (),
    fmt_name: str = DEFAULT_FORMAT.id,
    sandbox_timeout_s: float = 10.0,
    resamples: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    path, out = Path(predictions), Path(out)
    from selfprompt.evaluate.tasks import registry
    from selfprompt.generate.conditions import read_answer

    known = registry(list(task_file_paths))
    rows = read_predictions(path, set(known))
    fmt = get_format(fmt_name)
    specs = {name: spec for name, spec in known.items() if any(r.task == name for _, r in rows)}
    items: dict[str, dict[str, Item]] = {n: {i.id: i for i in load_items(s, data_dir)} for n, s in specs.items()}
    limits = SandboxLimits(timeout_s=sandbox_timeout_s)
    scored: dict[str, dict[str, list[ItemResult]]] = {}
    for number, row in rows:
        item = items[row.task].get(row.id)
        if item is None:
            raise DataError(str(path), number, "id", f"no item '{row.id}' in task '{row.task}'")
        # Only self-prompt outputs carry a role; any other condition's whole output is its answer.
        role, answer, held, problem = read_answer(row.condition, row.output, fmt)
        result = score_item(specs[row.task], item, answer, row.trigger_output, limits)
        scored.setdefault(row.task, {}).setdefault(row.condition, []).append(
            ItemResult(
                task=row.task,
                condition=row.condition,
                id=row.id,
                question=item.question,
                reference=item.answer,
                role=role,
                raw=row.output,
                answer=answer,
                trigger_output=row.trigger_output,
                format_held=held,
                problem=problem,
                **result,
            )
        )
    results: dict[str, Any] = {"predictions": str(path), "tasks": {}}
    # The folder holds this scoring only: per-item files of an earlier scoring into it are removed.
    written = {out / "items" / f"{task}__{condition}.jsonl" for task, by in scored.items() for condition in by}
    for stale in sorted((out / "items").glob("*.jsonl")) if (out / "items").is_dir() else []:
        if stale not in written:
            stale.unlink()
    for task, by_condition in scored.items():
        for condition, rs in by_condition.items():
            write_records(out / "items" / f"{task}__{condition}.jsonl", rs)
        results["tasks"][task] = {
            "version": specs[task].version,
            "metric": specs[task].metric,
            "conditions": {c: summarize(rs, resamples, seed) for c, rs in by_condition.items()},
            "comparisons": compare(_shared_items(by_condition), resamples, seed),
        }
    write_json(out / "results.json", results)
    (out / "results.md").write_text(markdown_table(results), encoding="utf-8")
    data_files = sorted({p for s in specs.values() for p in task_files(s, data_dir)})
    write_manifest(
        out,
        stage="eval-score",
        config={
            "predictions": str(path),
            "data_dir": str(data_dir),
            "task_files": list(task_file_paths),
            "format": fmt_name,
        },
        data_files=[path, *data_files],
        seed=seed,
        extra={"task_versions": {n: s.version for n, s in specs.items()}},
    )
    return results


def _shared_items(by_condition: dict[str, list[ItemResult]]) -> dict[str, list[ItemResult]]:
    """Each condition's results restricted to the ids every condition has, in one order (for pairing)."""
    common = set.intersection(*({r.id for r in rs} for rs in by_condition.values()))
    return {c: sorted((r for r in rs if r.id in common), key=lambda r: r.id) for c, rs in by_condition.items()}
