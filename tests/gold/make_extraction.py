"""Write tests/gold/extraction.jsonl, the gold extraction corpus, from the hand-written cases.

    SELFPROMPT_DATA_DIR=../shared/data python tests/gold/make_extraction.py

The cases (cases_*.py) are written by hand: each names a real item of a task, the style of model
that would write the output (small local model or large chat model), the first-pass output, the
trigger continuation when the task has a trigger pass, and the right extraction, checked by
hand: "strict:V", "lenient:V", "abstained" or "failed". This script copies each item's question
and choices from the data mirror into the record, so the corpus stands alone and the test needs
no mirror. It refuses a case whose item does not exist or whose expectation is malformed.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[1] / "src")]

from cases_choices import CASES as CHOICE_CASES  # noqa: E402
from cases_hostile import CASES as HOSTILE_CASES  # noqa: E402
from cases_letter_text import CASES as LETTER_TEXT_CASES  # noqa: E402
from cases_numbers import CASES as NUMBER_CASES  # noqa: E402
from cases_recorded import CASES as RECORDED_CASES  # noqa: E402
from cases_variants import CASES as VARIANT_CASES  # noqa: E402
from cases_words_code import CASES as WORD_CODE_CASES  # noqa: E402
from cases_yes_no import CASES as YES_NO_CASES  # noqa: E402

from selfprompt.evaluate.tasks import get_tasks, load_items  # noqa: E402

STATUSES = ("strict", "lenient", "abstained", "failed")


def expectation(text: str) -> dict:
    status, _, value = text.partition(":")
    if status not in STATUSES or (status in ("strict", "lenient")) != bool(value):
        raise ValueError(f"bad expectation {text!r}")
    if status == "lenient" or status == "strict":
        return {"status": status, "value": value}
    return {"status": status, "value": None}


def main() -> None:
    data_dir = os.environ.get("SELFPROMPT_DATA_DIR", str(HERE.parents[2] / "shared" / "data"))
    cases = [
        *NUMBER_CASES,
        *CHOICE_CASES,
        *YES_NO_CASES,
        *WORD_CODE_CASES,
        *VARIANT_CASES,
        *RECORDED_CASES,
        *LETTER_TEXT_CASES,
        *HOSTILE_CASES,
    ]
    items = {}
    for task in sorted({c.task for c in cases}):
        spec = get_tasks([task])[0]
        items.update({(task, i.id): i for i in load_items(spec, data_dir)})
    records, counts = [], {}
    for case in cases:
        task = case.task
        item = items.get((task, case.item))
        if item is None:
            raise SystemExit(f"no item {case.item!r} in task {task!r}")
        counts[task] = counts.get(task, 0) + 1
        record = {
            "id": f"{task}-{counts[task]:03d}",
            "task": task,
            "item": case.item,
            "style": case.style,
            "question": item.question,
            "choices": item.choices,
            "output": case.output,
            "trigger_output": case.trigger,
            "expected": expectation(case.expected),
            "note": case.note,
        }
        if task == "humaneval":
            record["entry_point"] = item.extra["entry_point"]
        records.append(record)
    out = HERE / "extraction.jsonl"
    with out.open("w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{len(records)} records -> {out}: " + ", ".join(f"{t} {n}" for t, n in sorted(counts.items())))


if __name__ == "__main__":
    main()
