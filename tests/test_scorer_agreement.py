"""bench/scorer_agreement.py: lm-eval's real GSM8K and MMLU filters against ours, on hand-written outputs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("lm_eval")

from selfprompt.evaluate.tasks import get_tasks

REPO = Path(__file__).resolve().parents[1]
CHOICES = {"A": "Paris", "B": "London", "C": "Rome", "D": "Berlin"}


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("scorer_agreement", REPO / "bench" / "scorer_agreement.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


@pytest.fixture(scope="module")
def filters(bench):
    return bench.load_peer_filters()


@pytest.fixture(scope="module")
def specs():
    return {s.name: s for s in get_tasks(["gsm8k", "mmlu"])}


def rows(bench, filters, specs, task, answer, trigger_output, reference, gold=None):
    extra = {} if gold is None else {"gold": gold}
    case = bench.Case(
        source="test",
        task=task,
        id="x",
        question="q",
        reference=reference,
        choices=CHOICES if task == "mmlu" else {},
        answer=answer,
        trigger_output=trigger_output,
        **extra,
    )
    return {r["filter"]: r for r in bench.compare(case, specs[task], filters)}


def test_filters_are_the_installed_configs(bench, filters):
    import lm_eval.tasks

    by_id = {f.id: f for f in filters}
    assert set(by_id) == {
        "gsm8k/strict-match",
        "gsm8k/flexible-extract",
        "gsm8k_cot/strict-match",
        "mmlu_abstract_algebra_generative/get_response",
        "mmlu_flan_cot_zeroshot_abstract_algebra/strict-match",
        "mmlu_flan_cot_zeroshot_abstract_algebra/flexible-extract",
    }
    shipped = yaml.safe_load((Path(lm_eval.tasks.__file__).parent / "gsm8k" / "gsm8k.yaml").read_text())
    flexible = next(f for f in shipped["filter_list"] if f["name"] == "flexible-extract")
    assert by_id["gsm8k/flexible-extract"].steps == flexible["filter"]
    assert by_id["gsm8k/flexible-extract"].config_file == "gsm8k/gsm8k.yaml"
    # every subject of a family shares its template's filters: one config stands for 57
    assert by_id["mmlu_abstract_algebra_generative/get_response"].shared_by >= 57


def test_agreement_on_a_plain_answer(bench, filters, specs):
    r = rows(bench, filters, specs, "gsm8k", "Total = 9 * 60 = 540 meters.", " 540.", "540")
    assert r["gsm8k/flexible-extract"]["agree"]
    assert r["gsm8k/flexible-extract"]["peer"]["filtered"] == "540."
    assert r["gsm8k/flexible-extract"]["peer"]["correct"] and r["gsm8k/flexible-extract"]["ours"]["correct"]
    # the few-shot '#### N' format is never written zero-shot: the peer's strict-match finds nothing
    strict = r["gsm8k/strict-match"]
    assert not strict["agree"] and strict["peer"]["filtered"] == "[invalid]"
    assert (strict["kind"], strict["right"], strict["status"]) == ("peer-needs-hash-format", "ours", "peer wrong")


def test_peer_takes_a_number_written_after_the_answer(bench, filters, specs):
    r = rows(
        bench,
        filters,
        specs,
        "gsm8k",
        "She sells 16 - 3 - 4 = 9 eggs; 9 * 2 = 18 dollars.",
        " 18.\n\nQuestion: Tom has 3 cats.",
        "18",
    )["gsm8k/flexible-extract"]
    assert r["ours"]["answer"] == "18" and r["ours"]["correct"]
    assert r["peer"]["filtered"] == "3" and not r["peer"]["correct"]
    assert (r["kind"], r["status"]) == ("peer-last-number-of-continuation", "peer wrong")


def test_mmlu_filters_on_echoed_options_and_bare_letters(bench, filters, specs):
    r = rows(
        bench,
        filters,
        specs,
        "mmlu",
        "Options (A) Paris (B) London (C) Rome (D) Berlin. Rome is the capital.",
        " C.",
        "C",
    )
    flexible = r["mmlu_flan_cot_zeroshot_abstract_algebra/flexible-extract"]
    assert flexible["peer"]["filtered"] == "(D)" and flexible["ours"]["answer"] == "C"
    assert flexible["kind"] == "peer-last-paren-letter" and flexible["status"] == "peer wrong"
    assert r["mmlu_flan_cot_zeroshot_abstract_algebra/strict-match"]["agree"]  # "... the answer is C."
    assert r["mmlu_abstract_algebra_generative/get_response"]["kind"] == "peer-first-line"

    r = rows(bench, filters, specs, "mmlu", "C", " C", "C")
    assert r["mmlu_abstract_algebra_generative/get_response"]["agree"]
    strict = r["mmlu_flan_cot_zeroshot_abstract_algebra/strict-match"]
    assert strict["peer"]["filtered"] == "[invalid]" and strict["kind"] == "peer-capture-lost"


def test_abstentions(bench, filters, specs):
    case = bench.Case(
        source="model",
        task="gsm8k",
        id="x",
        question="q",
        reference="12",
        choices={},
        answer="5 + 7 = 12, but the price is not given.",
        trigger_output=" not determinable from the information given.",
    )
    f = next(f for f in filters if f.id == "gsm8k/flexible-extract")
    text = bench.transcript(case, specs["gsm8k"].trigger)
    peer = bench.peer_score(f, text, bench.peer_doc("gsm8k", "q", "12", {}))
    assert peer["answer"] == "12" and peer["correct"]  # the peer credits the number of the reasoning
    abstaining = {"answer": None, "extractor": None, "abstained": True, "correct": False}
    verdict = bench.judge(case, specs["gsm8k"], f, abstaining, peer, text)
    assert (verdict["kind"], verdict["right"], verdict["status"]) == ("peer-credits-abstention", "ours", "peer wrong")
    # a scorer that reads past the non-answer is the one at fault
    strict = next(f for f in filters if f.id == "gsm8k_cot/strict-match")
    none = bench.peer_score(strict, text, bench.peer_doc("gsm8k", "q", "12", {}))
    reading = {"answer": "12", "extractor": "last-number", "abstained": None, "correct": True}
    verdict = bench.judge(case, specs["gsm8k"], strict, reading, none, text)
    assert (verdict["kind"], verdict["right"], verdict["status"]) == (
        "ours-reads-past-abstention",
        "peer",
        "ours wrong",
    )


def test_gold_decides_who_is_right(bench, filters, specs):
    f = next(f for f in filters if f.id == "gsm8k/flexible-extract")
    case = bench.Case(
        source="gold",
        task="gsm8k",
        id="x",
        question="q",
        reference="540",
        choices={},
        answer="Total = 9 * 60 = 540 meters.",
        trigger_output=None,
        gold="540",
    )
    text = bench.transcript(case, specs["gsm8k"].trigger)
    peer = bench.peer_score(f, text, bench.peer_doc("gsm8k", "q", "540", {}))
    wrong = {"answer": "9", "extractor": "answer-is-number", "abstained": None, "correct": False}
    verdict = bench.judge(case, specs["gsm8k"], f, wrong, peer, text)
    assert (verdict["right"], verdict["status"]) == ("peer", "ours wrong")


def test_score_source_counts(bench, filters, specs):
    cases = [
        bench.Case(
            source="model",
            task="gsm8k",
            id=str(i),
            question="q",
            reference="18",
            choices={},
            answer="9 * 2 = 18.",
            trigger_output=out,
        )
        for i, out in enumerate([" 18.", " 18.\n\n3 cats"])
    ]
    res = bench.score_source(cases, specs, filters)["gsm8k"]
    flexible = res["filters"]["gsm8k/flexible-extract"]
    assert (flexible["n"], flexible["agree"], flexible["agreement_rate"]) == (2, 1, 0.5)
    assert [d["id"] for d in flexible["disagreements"]] == ["1"]
    assert flexible["by_status"] == {"peer wrong": 1}


def test_read_corpus_takes_gsm8k_and_mmlu_with_the_mirror_reference(bench, data_dir, tmp_path, monkeypatch):
    import json

    from selfprompt.errors import DataError

    monkeypatch.setenv("SELFPROMPT_DATA_DIR", str(data_dir))
    record = {
        "id": "gsm8k-001",
        "task": "gsm8k",
        "item": "gsm8k-0",
        "style": "small",
        "question": "q",
        "choices": {},
        "output": "9 * 2 = 18",
        "trigger_output": " 18.",
        "expected": {"status": "strict", "value": "18"},
        "note": "",
    }
    other = {**record, "id": "strategyqa-001", "task": "strategyqa", "item": "strategyqa-0"}
    corpus = tmp_path / "extraction.jsonl"
    corpus.write_text("\n".join(json.dumps(r) for r in (record, other)) + "\n", encoding="utf-8")
    cases = bench.read_corpus(corpus)
    assert [(c.id, c.reference, c.gold, c.extra["status"]) for c in cases] == [("gsm8k-001", "18", "18", "strict")]

    broken = {k: v for k, v in record.items() if k != "output"}
    corpus.write_text(json.dumps(record) + "\n" + json.dumps(broken) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"extraction\.jsonl:2: field 'output'"):
        bench.read_corpus(corpus)


def test_outputs_with_two_answers_go_to_review(bench, filters, specs):
    choices = {"A": "True, True", "B": "False, False", "C": "True, False", "D": "False, True"}
    case = bench.Case(
        source="model",
        task="mmlu",
        id="x",
        question="q",
        reference="B",
        choices=choices,
        answer="Both statements are false.",
        trigger_output=" False, False (D)",
    )
    f = next(f for f in filters if f.id.endswith("flexible-extract") and f.task == "mmlu")
    text = bench.transcript(case, specs["mmlu"].trigger)
    peer = bench.peer_score(f, text, bench.peer_doc("mmlu", "q", "B", choices))
    assert peer["answer"] == "D"
    by_text = {"answer": "B", "extractor": "trigger-choice", "abstained": False, "correct": True}
    verdict = bench.judge(case, specs["mmlu"], f, by_text, peer, text)
    assert (verdict["kind"], verdict["right"], verdict["status"]) == ("letter-text-conflict", "unknown", "review")
    # a restated answer counts; one the token limit cut short does not
    assert bench.restated_answers("gsm8k", " 400.\n\nThe answer is 400.\n\nThe answer is 4") == ["400"]
    assert bench.restated_answers("mmlu", " (B) 6x.\n\nThe answer is (C) 0.") == ["C"]
