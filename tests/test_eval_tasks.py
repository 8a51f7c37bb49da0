"""Task registry: every task loads its full mirror file with the expected row count; bad input is named."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from selfprompt.errors import ConfigError, DataError
from selfprompt.evaluate.tasks import get_tasks, load_items, registry, select_items

ALL_TASKS = [
    "mmlu",
    "strategyqa",
    "gsm8k",
    "humaneval",
    "commonsenseqa",
    "arc_challenge",
    "aqua",
    "multiarith",
    "addsub",
    "singleeq",
    "svamp",
    "last_letters",
    "coin_flip",
    "date_understanding",
    "tracking_shuffled_objects",
]


def manifest_records(data_dir, spec) -> int:
    """Row count of the task's files according to the mirror's MANIFEST.json."""
    from selfprompt.evaluate.tasks import task_files

    counts = {f["path"]: f["records"] for d in json.loads((data_dir / "MANIFEST.json").read_text()) for f in d["files"]}
    return sum(counts[str(p.relative_to(data_dir))] for p in task_files(spec, data_dir))


def test_registry_has_every_task():
    assert set(ALL_TASKS) <= set(registry())


@pytest.mark.parametrize("name", ALL_TASKS)
def test_task_loads_full_file(data_dir, name):
    spec = get_tasks([name])[0]
    items = load_items(spec, data_dir)
    assert len(items) == spec.expected_rows == manifest_records(data_dir, spec)
    assert len({i.id for i in items}) == len(items), "item ids must be unique"
    assert all(i.question.strip() for i in items)
    if spec.answer_type == "choice":
        assert all(i.answer in i.choices for i in items)
        assert all(f"({label})" in i.question for i in items for label in i.choices)
    elif spec.answer_type == "number":
        assert all(float(i.answer) == float(i.answer) for i in items)
    elif spec.answer_type == "yes_no":
        assert {i.answer for i in items} == {"yes", "no"}
    elif spec.answer_type == "code":
        assert all({"prompt", "test", "entry_point"} <= set(i.extra) for i in items)


def test_references_match_the_sources(data_dir):
    gsm8k = load_items(get_tasks(["gsm8k"])[0], data_dir)
    assert gsm8k[0].answer == "18"  # "#### 18" in the first GSM8K test row
    assert load_items(get_tasks(["mmlu"])[0], data_dir)[0].answer in "ABCD"
    strategy = Counter(i.answer for i in load_items(get_tasks(["strategyqa"])[0], data_dir))
    assert strategy == {"yes": 1071, "no": 1219}  # counts stated in the mirror's manifest


def test_date_choices_are_shuffled_deterministically(data_dir):
    spec = get_tasks(["date_understanding"])[0]
    first, again = load_items(spec, data_dir), load_items(spec, data_dir)
    assert [i.choices for i in first] == [i.choices for i in again]
    assert max(Counter(i.answer for i in first).values()) < 0.5 * len(first)  # the source has 364/369 'A'


def test_unknown_task_lists_valid_names():
    with pytest.raises(ConfigError) as err:
        get_tasks(["gsm8k", "gsm9k"])
    assert "gsm9k" in str(err.value) and "strategyqa" in str(err.value)


def test_user_task_file_adds_a_task(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "rows.jsonl").write_text('{"q": "2+2?", "a": "4"}\n{"q": "3+3?", "a": "6"}\n')
    task = tmp_path / "toy.yaml"
    task.write_text(
        "name: toy\nversion: '1'\nfiles: [mine/rows.jsonl]\nfile_format: jsonl\n"
        "row: {question: '{q}', answer: a}\nanswer_type: number\n"
        "trigger: 'Therefore, the answer (arabic numerals) is'\n"
        "extractors: [trigger-number, last-number]\nrole_family: math\n"
    )
    spec = get_tasks(["toy"], [task])[0]
    assert [(i.question, i.answer) for i in load_items(spec, tmp_path)] == [("2+2?", "4"), ("3+3?", "6")]


def test_bad_task_file_and_bad_row_are_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\nversion: '1'\nfiles: [x.jsonl]\nfile_format: jsonl\nrow: {question: '{q}'}\n"
        "answer_type: numbr\nextractors: [last-number]\nrole_family: math\n"
    )
    with pytest.raises(DataError) as err:
        get_tasks(["bad"], [bad])
    assert "bad.yaml" in str(err.value) and "answer_type" in str(err.value)

    (tmp_path / "x.jsonl").write_text('{"q": "ok", "a": "1"}\n{"question": "wrong field"}\n')
    good = tmp_path / "good.yaml"
    good.write_text(bad.read_text().replace("numbr", "number").replace("name: bad", "name: good"))
    with pytest.raises(DataError) as err:
        load_items(get_tasks(["good"], [good])[0], tmp_path)
    assert "x.jsonl:2" in str(err.value) and "'q'" in str(err.value)


def test_seeded_subsets(data_dir):
    items = load_items(get_tasks(["mmlu"])[0], data_dir)
    a, b, c = select_items(items, 20, 0), select_items(items, 20, 0), select_items(items, 20, 1)
    assert [i.id for i in a] == [i.id for i in b] != [i.id for i in c]
    assert len({i.id for i in a}) == 20 and select_items(items, 5, None) == items[:5]
