"""The gold extraction corpus (tests/gold/extraction.jsonl) scores 100%, item by item.

Every record is a realistic model output written by hand for a real item of one of the 15 tasks
(small local models: rambling, repetition, truncation, invented follow-up questions; large chat
models: chain of thought, markdown, LaTeX, refusals, echoed triggers, several candidates,
self-corrections), with its hand-checked extraction: the value and whether the strict reading
(the trigger pass) or a lenient fallback gave it, or "abstained", or "failed". The cases are
written in tests/gold/cases_*.py; tests/gold/make_extraction.py copies each item's question and
choices from the data mirror into the corpus.

The issue's own examples follow as named tests, through the same path `selfprompt eval` scores by.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from selfprompt.evaluate.extract import ExtractInput, extract
from selfprompt.evaluate.runner import score_item
from selfprompt.evaluate.tasks import Item, get_tasks, registry

CORPUS = Path(__file__).parent / "gold" / "extraction.jsonl"
RECORDS = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]


def read(record: dict):
    spec = get_tasks([record["task"]])[0]
    x = ExtractInput(
        answer=record["output"],
        trigger_output=record["trigger_output"],
        choices=record["choices"],
        entry_point=record.get("entry_point"),
        question=record["question"],
        trigger=spec.trigger,
    )
    return extract(spec.extractors, x)


@pytest.mark.parametrize("record", RECORDS, ids=[r["id"] for r in RECORDS])
def test_gold_extraction(record):
    ex = read(record)
    expected = record["expected"]
    got = {"status": ex.status, "value": ex.lenient}
    if record["task"] == "humaneval" and got["value"] is not None:
        got["value"] = got["value"].strip()
        expected = {**expected, "value": expected["value"] and expected["value"].strip()}
    assert got == expected, record["note"]
    # the policy, on every record: lenient only fills a missing strict answer; an abstention has no value
    if ex.strict is not None:
        assert ex.lenient == ex.strict
    if ex.abstained:
        assert ex.strict is None and ex.lenient is None


def test_corpus_covers_every_task_style_answer_type_and_outcome():
    assert len(RECORDS) >= 400
    assert len({r["id"] for r in RECORDS}) == len(RECORDS)
    tasks = Counter(r["task"] for r in RECORDS)
    builtin = {name for name, spec in registry().items() if spec.source_path and "/evaluate/tasks/" in spec.source_path}
    assert set(tasks) == builtin and len(builtin) == 15
    assert min(tasks.values()) >= 10, tasks
    assert {get_tasks([t])[0].answer_type for t in tasks} == {"number", "choice", "yes_no", "text", "code"}
    assert {r["style"] for r in RECORDS} == {"small", "chat"}
    outcomes = Counter(r["expected"]["status"] for r in RECORDS)
    assert set(outcomes) == {"strict", "lenient", "abstained", "failed"} and outcomes["abstained"] >= 30, outcomes
    with_trigger = [r for r in RECORDS if get_tasks([r["task"]])[0].trigger]
    assert all(
        any(r["trigger_output"] is not None for r in with_trigger if r["task"] == t)
        for t in {r["task"] for r in with_trigger}
    )


# --- the examples, each with its right value ------------------------------------------------


def item_for(task: str, question: str, answer: str, choices: dict[str, str] | None = None) -> Item:
    return Item(task=task, id=f"{task}-example", question=question, answer=answer, choices=choices or {})


def score(task: str, item: Item, answer: str, trigger_output: str | None) -> dict:
    return score_item(get_tasks([task])[0], item, answer, trigger_output)


def test_gsm8k_expression_after_the_cue_is_worth_its_result():
    item = item_for(
        "gsm8k",
        "James decides to run 3 sprints 3 times a week. He runs 60 meters each sprint. "
        "How many total meters does he run a week?",
        "540",
    )
    answer = "James runs 3 sprints 3 times a week, so 3 * 3 = 9 sprints. Total = 9 * 60 = 540 meters."
    for trigger_output in (None, " Total = 9 * 60 = 540 meters."):
        result = score("gsm8k", item, answer if trigger_output is None else "He runs 9 sprints.", trigger_output)
        assert result["extracted"] == "540" and result["extracted_strict"] == "540" and result["correct"]


def test_mmlu_echoed_trigger_is_not_the_answer():
    choices = {"A": "0", "B": "4", "C": "2", "D": "6"}
    item = item_for(
        "mmlu",
        "Find the degree for the given field extension Q(sqrt(2)) over Q.\nAnswer Choices: (A) 0 (B) 4 (C) 2 (D) 6",
        "C",
        choices,
    )
    result = score(
        "mmlu", item, "The minimal polynomial is x^2 - 2.", "\n\nTherefore, among A through D, the answer is C."
    )
    assert result["extracted_strict"] == "C" and result["correct_strict"] and not result["abstained"]


def test_boxed_letter_is_read_and_no_option_text_is_credited_instead():
    choices = {
        "A": "a decrease in demand",
        "B": "an increase in the quantity demanded",
        "C": "an increase in demand",
        "D": "a decrease in the quantity demanded",
    }
    item = item_for(
        "mmlu",
        "A decrease in the price of a particular product will result in\nAnswer Choices: "
        "(A) a decrease in demand (B) an increase in the quantity demanded (C) an increase in demand "
        "(D) a decrease in the quantity demanded",
        "B",
        choices,
    )
    answer = (
        "A lower price moves us along the demand curve: it is an increase in the quantity demanded, "
        "not an increase in demand.\n\nThe final answer is $\\boxed{B}$."
    )
    for trigger_output in (None, " The final answer is $\\boxed{B}$."):
        result = score("mmlu", item, answer, trigger_output)
        assert result["extracted"] == "B" and result["correct"]


STATEMENTS = {"A": "True, True", "B": "False, False", "C": "True, False", "D": "False, True"}
STATEMENTS_Q = (
    "Statement 1 | A factor group of a non-Abelian group is non-Abelian. Statement 2 | If K is a normal "
    "subgroup of H and H is a normal subgroup of G, then K is a normal subgroup of G.\nAnswer Choices: "
    "(A) True, True (B) False, False (C) True, False (D) False, True"
)
DEGREES = {"A": "0", "B": "4", "C": "2", "D": "6"}
DEGREES_Q = (
    "Find the degree for the given field extension Q(sqrt(2), sqrt(3)) over Q.\nAnswer Choices: (A) 0 (B) 4 (C) 2 (D) 6"
)


@pytest.mark.parametrize(
    "trigger_output",
    [
        " (C) False, False.",
        " (C) True, False.",
        " C. False, False",
        " C) False, False",
        " **C** False, False",
        " **(C) False, False**",
        " Answer: C False, False",
        " $\\boxed{C}$ False, False",
        " False, False (C).",
        " False, False, so (C).",
    ],
)
def test_an_explicit_letter_beats_another_options_text_word_options(trigger_output):
    item = item_for("mmlu", STATEMENTS_Q, "C", STATEMENTS)
    result = score("mmlu", item, "Statement 1 is true. Statement 2 is false.", trigger_output)
    assert result["extracted_strict"] == "C" and result["correct_strict"] and not result["abstained"]


def test_a_letter_before_or_after_a_text_is_read_the_same_for_words_and_numbers():
    words = item_for("mmlu", STATEMENTS_Q, "D", STATEMENTS)
    numbers = item_for("mmlu", DEGREES_Q, "D", DEGREES)
    for item, before, after in ((words, " (D) False, False", " False, False (D)"), (numbers, " (D) 2.", " 2 (D).")):
        for trigger_output in (before, after):
            assert score("mmlu", item, "Let me think.", trigger_output)["extracted_strict"] == "D", trigger_output


def test_first_pass_letter_beats_another_options_text_after_the_cue():
    item = item_for("mmlu", STATEMENTS_Q, "C", STATEMENTS)
    for answer in (
        "Both are false.\n\nThe answer is (C) False, False.",
        "Both are false.\n\nThe answer is False, False (C).",
    ):
        result = score("mmlu", item, answer, None)
        assert result["extracted_strict"] == "C" and result["correct_strict"], answer


def test_an_options_text_offered_beside_a_letter_is_a_hedge():
    item = item_for("mmlu", STATEMENTS_Q, "C", STATEMENTS)
    result = score("mmlu", item, "Statement 1 is true.", " False, False or (C).")
    assert result["abstained"] and not result["correct"] and result["extracted"] is None


def test_two_explicit_answers_keep_the_first_unless_corrected():
    item = item_for("mmlu", DEGREES_Q, "C", DEGREES)
    kept = score("mmlu", item, "The degree is 4.", " (B) 4.\n\nThe answer is (C) 0.")
    assert kept["extracted_strict"] == "B" and not kept["correct"]
    corrected = score("mmlu", item, "The degree is 4.", " (B) 4. Wait, actually the answer is (C) 2.")
    assert corrected["extracted"] == "C" and corrected["correct"]


def test_strategyqa_unknown_is_abstained_and_wrong():
    item = item_for("strategyqa", "Would a broadcast from Spirit make the news in 2020?", "no")
    result = score(
        "strategyqa",
        item,
        "There is no information available to confirm whether a broadcast from Spirit made the news in 2020.",
        "unknown.",
    )
    assert result["abstained"] and not result["correct"] and not result["correct_strict"]
    assert result["extracted"] is None and not result["extraction_failed"]


def test_gsm8k_second_pass_that_cannot_determine_is_not_rescued():
    item = item_for(
        "gsm8k",
        "Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and "
        "bakes muffins for her friends every day with four. She sells the remainder at the farmers' "
        "market daily for $2 per fresh duck egg. How much in dollars does she make every day at the "
        "farmers' market?",
        "18",
    )
    result = score(
        "gsm8k", item, "She has 16 - 3 - 4 = 9 eggs left to sell.", " cannot be determined from the information given."
    )
    assert result["abstained"] and result["extracted"] is None and result["extracted_strict"] is None
    assert not result["correct"] and not result["extraction_failed"]


def test_last_letters_quoted_answer_with_the_period_inside():
    item = item_for(
        "last_letters", 'Take the last letters of each words in "Alina Brian Dora Luna" and concatenate them.', "anaa"
    )
    result = score("last_letters", item, "Alina -> a, Brian -> n, Dora -> a, Luna -> a.", 'The final answer is "anaa."')
    assert result["extracted_strict"] == "anaa" and result["correct_strict"]


def test_results_report_abstentions_apart_from_failures():
    """Per task and condition: strict and lenient accuracy, extraction failures and abstentions, each counted apart."""
    from selfprompt.evaluate.runner import ItemResult, markdown_table, summarize

    item = item_for("strategyqa", "Would a pear sink in water?", "no")
    outputs = [
        ("A pear floats.", " No."),  # strict, right
        ("No, pears float.", ":"),  # lenient, right
        ("Pears are fruit.", " unknown."),  # abstained
        ("Pears are fruit.", ":"),
    ]  # failed
    rows = []
    for answer, trigger_output in outputs:
        scored = score("strategyqa", item, answer, trigger_output)
        rows.append(
            ItemResult(
                task="strategyqa",
                condition="plain",
                id=item.id,
                question=item.question,
                reference=item.answer,
                role=None,
                raw=answer,
                answer=answer,
                trigger_output=trigger_output,
                **scored,
            )
        )
    assert [(r.correct_strict, r.correct, r.abstained, r.extraction_failed) for r in rows] == [
        (True, True, False, False),
        (False, True, False, False),
        (False, False, True, False),
        (False, False, False, True),
    ]
    summary = summarize(rows, resamples=200, seed=0)
    assert summary["strict"]["accuracy"] == 0.25 and summary["lenient"]["accuracy"] == 0.5
    assert summary["abstained_rate"] == 0.25 and summary["extraction_failure_rate"] == 0.25
    table = markdown_table({"tasks": {"strategyqa": {"conditions": {"plain": summary}, "comparisons": []}}})
    assert "| abstained |" in table.splitlines()[0] and table.splitlines()[2].endswith("| 25.0% | 25.0% |")


@pytest.mark.parametrize(
    "trigger_output, abstained",
    [
        (" A, B, C, D and E.", True),
        (" (A), (B), (C), (D) and (E)", True),
        (" A, B and C", True),
        (" A.", False),
    ],
)
def test_naming_every_option_is_a_non_answer_never_its_first_letter(trigger_output, abstained):
    choices = {"A": "bank", "B": "library", "C": "department store", "D": "mall", "E": "new york"}
    item = item_for("commonsenseqa", "Where would you find a revolving door with security?", "A", choices)
    result = score("commonsenseqa", item, "Security is needed at a bank.", trigger_output)
    assert result["abstained"] == abstained and result["correct"] == (not abstained)
    if abstained:
        assert result["extracted"] is None and result["extracted_strict"] is None
