"""Differential check: our GSM8K and MMLU answer extraction against lm-evaluation-harness's answer filters.

The same outputs are scored twice: by selfprompt (the task's extractor chain from its task spec, through
`score_item`, the function `selfprompt eval` scores with) and by lm-eval's answer filters, built by lm-eval's
own filter registry from the filter lists of its shipped task configs (gsm8k, gsm8k_cot, mmlu generative,
mmlu flan_cot_zeroshot), each judged with the exact_match settings and target template of its config.
Every disagreement is written out with the output text, both extractions, the reference and which side
is right, with a status: "ours wrong" (our fault, to be fixed, never kept), "peer wrong" (its kind says
why), or "review" (an output that states two answers, or of no known kind: a person decides).

Sources:
  gold   the GSM8K and MMLU items of the hand-checked extraction corpus (`--corpus`); the right
         extraction is the corpus's, so "which is right" is exact.
  model  the default model's outputs (condition plain, with the trigger pass, llama.cpp, greedy) on the
         first `--items` GSM8K and MMLU test items of the mirror, generated once by `selfprompt eval` and
         cached in WORK/generations.json; reruns only rescore. Here "which is right" is judged by the kind
         of case (the answer the model gave after the trigger is its answer); an unknown kind says review.

lm-eval reads one text per item: ours reads the answering turn and the trigger continuation apart, the
peer reads them as the model wrote them, joined by the trigger (answer, newline, trigger, continuation),
so both see the same words.

    .venv/bin/python bench/scorer_agreement.py [--corpus tests/gold/extraction.jsonl] [--items 50]
        [--max-tokens 128] [--work runs/bench/scorer_agreement] [--threads N] [--regenerate] [--no-corpus | --no-model]

Writes bench/results/scorer_agreement.json (`--out`). Needs lm_eval (the bench extra), written against
0.4.13, whose TaskManager index gives each task's parsed config.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import string
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

REPO = Path(__file__).resolve().parents[1]
RESULT = REPO / "bench" / "results" / "scorer_agreement.json"
TASKS = ("gsm8k", "mmlu")

# (our task, lm-eval task whose shipped YAML holds the filter, filter name). gsm8k_cot's flexible-extract
# is the same pipeline as gsm8k's, and every MMLU subject config of a family shares its template's filters
# (checked in load_peer_filters), so one config per family stands for all.
PEER_FILTERS = [
    ("gsm8k", "gsm8k", "strict-match"),
    ("gsm8k", "gsm8k", "flexible-extract"),
    ("gsm8k", "gsm8k_cot", "strict-match"),
    ("mmlu", "mmlu_abstract_algebra_generative", "get_response"),
    ("mmlu", "mmlu_flan_cot_zeroshot_abstract_algebra", "strict-match"),
    ("mmlu", "mmlu_flan_cot_zeroshot_abstract_algebra", "flexible-extract"),
]
PEER_TASK_DIRS = ["gsm8k", "mmlu/generative", "mmlu/flan_cot_zeroshot"]  # indexed alone: seconds, not a minute
SUBJECT_FAMILIES = {
    "mmlu_abstract_algebra_generative": r"mmlu_\w+_generative",
    "mmlu_flan_cot_zeroshot_abstract_algebra": r"mmlu_flan_cot_zeroshot_\w+",
}


# --- the peer: lm-eval's filters, built from its task configs ------------------------------------------


@dataclass
class PeerFilter:
    task: str  # our task name
    lm_task: str
    name: str
    config_file: str  # the YAML the task comes from, relative to lm_eval/tasks
    steps: list[dict[str, Any]]  # the filter list as the config gives it
    ensemble: Any  # lm_eval FilterEnsemble
    target_template: str  # the config's doc_to_target
    metric_kwargs: dict[str, Any]  # the config's exact_match settings
    shared_by: int = 1  # subject configs with this very filter list

    @property
    def id(self) -> str:
        return f"{self.lm_task}/{self.name}"

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "task": self.task,
            "lm_eval_task": self.lm_task,
            "filter": self.name,
            "config_file": self.config_file,
            "steps": self.steps,
            "doc_to_target": self.target_template,
            "exact_match": self.metric_kwargs,
            "subject_configs_sharing_it": self.shared_by,
        }


def load_peer_filters() -> list[PeerFilter]:
    """lm-eval's GSM8K and MMLU answer filters, built by its registry from the installed task YAMLs."""
    import lm_eval.tasks
    from lm_eval.filters import build_filter_ensemble
    from lm_eval.tasks import TaskManager

    root = Path(lm_eval.tasks.__file__).parent
    manager = TaskManager(include_path=[root / d for d in PEER_TASK_DIRS], include_defaults=False)
    index = getattr(manager, "task_index", None)
    if index is None:
        raise RuntimeError(f"lm_eval {lm_eval.__version__} has no TaskManager.task_index; this check needs 0.4.13")
    filters = []
    for task, lm_task, name in PEER_FILTERS:
        entry = index[lm_task]
        cfg = entry.cfg  # the registry's parse of the YAML, includes merged
        spec = next(f for f in cfg["filter_list"] if f["name"] == name)
        components = [(s["function"], {k: v for k, v in s.items() if k != "function"}) for s in spec["filter"]]
        metric = next(m for m in cfg["metric_list"] if m["metric"] == "exact_match")
        shared = 1
        if lm_task in SUBJECT_FAMILIES:
            family = [
                e.cfg
                for n, e in index.items()
                if re.fullmatch(SUBJECT_FAMILIES[lm_task], n) and e.cfg and "filter_list" in e.cfg
            ]
            if any(c["filter_list"] != cfg["filter_list"] for c in family):
                raise RuntimeError(f"the {lm_task} family's subject configs differ in their filters; pick per subject")
            shared = len(family)
        filters.append(
            PeerFilter(
                task=task,
                lm_task=lm_task,
                name=name,
                config_file=str(Path(entry.yaml_path).relative_to(root)),
                steps=spec["filter"],
                ensemble=build_filter_ensemble(name, components),
                target_template=cfg["doc_to_target"],
                metric_kwargs={
                    k: v for k, v in metric.items() if k not in ("metric", "aggregation", "higher_is_better")
                },
                shared_by=shared,
            )
        )
    return filters


def peer_doc(task: str, question: str, reference: str, choices: dict[str, str]) -> dict[str, Any]:
    """The item as an lm-eval doc of the hub dataset (openai/gsm8k, cais/mmlu)."""
    if task == "gsm8k":
        return {"question": question, "answer": f"#### {reference}"}
    labels = list(choices)
    return {
        "question": question,
        "choices": [choices[lab] for lab in labels],
        "answer": labels.index(reference) if reference in labels else -1,
    }


def peer_score(f: PeerFilter, text: str, doc: dict[str, Any]) -> dict[str, Any]:
    """Run one filter pipeline on one response and judge it as its config does."""
    from lm_eval.api.instance import Instance
    from lm_eval.api.registry import get_metric
    from lm_eval.utils import apply_template

    inst = Instance(request_type="generate_until", doc=doc, arguments=("", {}), idx=0, resps=[text])
    f.ensemble.apply([inst])
    filtered = inst.filtered_resps[f.name]
    target = apply_template(f.target_template, doc) if doc.get("answer", 0) != -1 else ""
    correct = (
        bool(
            get_metric("exact_match")(predictions=[filtered], references=[target], **f.metric_kwargs)["exact_match"]
            == 1
        )
        and target != ""
    )
    labels = [chr(ord("A") + i) for i in range(len(doc.get("choices", [])))]
    return {"filtered": filtered, "answer": peer_answer(f, filtered, labels), "correct": correct, "target": target}


def peer_answer(f: PeerFilter, filtered: str, labels: list[str]) -> str | None:
    """The peer's filtered string read as an answer of the task's type (None: no answer in it)."""
    if f.task == "gsm8k":
        s = filtered
        for pattern in f.metric_kwargs.get("regexes_to_ignore", []):
            s = re.sub(pattern, "", s)
        return canon_number(s)
    s = filtered.translate(str.maketrans("", "", string.punctuation)).strip().upper()
    return s if s in labels else None


def canon_number(s: str | None) -> str | None:
    """'18', '18.0', '$18.00' -> '18'; None when s is not one number."""
    if s is None:
        return None
    s = s.strip().replace(",", "").replace("$", "").rstrip(".")
    try:
        value = float(s)
    except ValueError:
        return None
    return str(int(value)) if value.is_integer() else repr(value)


# --- ours: the scorer `selfprompt eval` uses --------------------------------------------------------------


def our_score(spec: Any, item: Any, answer: str, trigger_output: str | None) -> dict[str, Any]:
    """Our extraction and verdict for one output, through the highest-level scoring entry point."""
    from selfprompt.evaluate.runner import score_item

    s = score_item(spec, item, answer, trigger_output)
    get = s.get if isinstance(s, dict) else (lambda k, d=None: getattr(s, k, d))
    extracted = get("extracted")
    value = canon_number(extracted) if spec.answer_type == "number" else extracted
    return {
        "answer": value,
        "raw": extracted,
        "strict": get("extracted_strict"),
        "extractor": get("extractor"),
        "abstained": get("abstained"),
        "correct": bool(get("correct")),
        "correct_strict": get("correct_strict"),
    }


# --- cases -----------------------------------------------------------------------------------------------

NO_GOLD = object()


@dataclass
class Case:
    source: str  # gold or model
    task: str
    id: str
    question: str
    reference: str
    choices: dict[str, str]
    answer: str  # the answering turn (role removed)
    trigger_output: str | None
    gold: Any = NO_GOLD  # the hand-checked right extraction (None: no answer may be read), gold source only
    note: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def transcript(case: Case, trigger: str | None) -> str:
    """What the model wrote, as one text: the answer, then the trigger and its continuation (second pass)."""
    if case.trigger_output is None or not trigger:
        return case.answer
    return case.answer.rstrip() + "\n" + trigger + case.trigger_output


def compare(case: Case, spec: Any, filters: list[PeerFilter]) -> list[dict[str, Any]]:
    """One row per peer filter of the case's task: both readings, whether they agree, and if not, why."""
    from selfprompt.evaluate.tasks import Item

    item = Item(task=spec.name, id=case.id, question=case.question, answer=case.reference, choices=case.choices)
    ours = our_score(spec, item, case.answer, case.trigger_output)
    text = transcript(case, spec.trigger)
    doc = peer_doc(case.task, case.question, case.reference, case.choices)
    rows = []
    for f in filters:
        if f.task != case.task:
            continue
        peer = peer_score(f, text, doc)
        agree = peer["answer"] == ours["answer"] and peer["correct"] == ours["correct"]
        row = {"filter": f.id, "agree": agree, "ours": ours, "peer": peer}
        if not agree:
            row.update(judge(case, spec, f, ours, peer, text))
        rows.append(row)
    return rows


# --- judging a disagreement --------------------------------------------------------------------------------


class Kind(NamedTuple):
    """A kind of disagreement: who reads such an output right (ours, peer, neither, unknown), and why."""

    right: str
    explanation: str


# For the model's outputs (no gold) the kind's `right` decides the status.
KINDS: dict[str, Kind] = {
    "peer-needs-hash-format": Kind(
        "ours",
        "peer's strict-match reads only '#### N', the answer format of its few-shot examples; a "
        "zero-shot answer does not write it, so the peer finds no answer where the model gave one",
    ),
    "peer-needs-answer-is-period": Kind(
        "ours",
        "peer's strict-match reads only 'The answer is N.' (capital T, a character after the number); "
        "the model stated its answer otherwise, so the peer finds none",
    ),
    "peer-first-answer-is": Kind(
        "ours", "peer takes the first 'The answer is N' of the reasoning; the model's final answer differs"
    ),
    "peer-last-number-of-continuation": Kind(
        "ours",
        "peer takes the last number of the whole text, which the model wrote after its final "
        "answer (a new question, a restated figure, a unit)",
    ),
    "peer-last-number-of-reasoning": Kind(
        "ours", "peer takes the last number of the reasoning; the model's final answer differs"
    ),
    "peer-takes-operand": Kind(
        "ours",
        "the model's answer is an expression (9 * 60, \\frac{19.50}{0.75}); the peer takes its last "
        "operand, not its value",
    ),
    "peer-not-a-number": Kind(
        "ours",
        "peer's number pattern [$0-9.,]{2,} takes a run of dots or commas, or a malformed figure, as "
        "the last number; it is no number",
    ),
    "peer-string-match": Kind(
        "ours",
        "same number, but the peer compares strings: an equal value written differently "
        "(18.00, 18.0, a leading +) is scored wrong",
    ),
    "peer-credits-abstention": Kind(
        "ours",
        "the model declined to answer; the peer takes a number or letter from the reasoning as its "
        "answer anyway (credited whenever it happens to be the reference)",
    ),
    "peer-reads-a-non-answer": Kind(
        "ours",
        "the output gives no answer (an echoed option list, options named in passing, a figure that is "
        "no answer); the peer reads one from it anyway",
    ),
    "peer-first-line": Kind(
        "ours",
        "peer's get_response keeps the first line whole and exact-matches it with the letter; any "
        "answer written as more than a bare letter, or after a first line of reasoning, is lost",
    ),
    "peer-first-line-letter": Kind(
        "ours", "peer takes a bare letter on the first line; the model's final answer differs"
    ),
    "peer-capture-too-long": Kind(
        "ours",
        "peer's strict-match captures the rest of the line after 'answer is' (less its last "
        "character), so 'C. text', '(C) text', an option's text or 'C because ...' is no letter and scores wrong",
    ),
    "peer-needs-answer-is": Kind(
        "ours",
        "peer's strict-match reads only after 'answer is', 'The answer: ' or 'The final answer: '; the "
        "model stated its answer otherwise, so the peer finds none",
    ),
    "peer-capture-lost": Kind(
        "ours",
        "peer's strict-match needs a character after the answer on its line ((?=.)); the letter "
        "that ends a line, or the line that ends after 'answer is', gives nothing",
    ),
    "peer-last-paren-letter": Kind(
        "ours",
        "peer takes the last parenthesized letter of the text (an echoed option list, a rejected "
        "option, the continuation after the answer); the model's final answer differs",
    ),
    "peer-option-text": Kind(
        "ours",
        "peer found no '(X)' and matched an option's text somewhere in the output (the reasoning or "
        "the question restated); the model's final answer differs",
    ),
    "peer-colon-letter": Kind(
        "ours",
        "peer found no '(X)' nor option text and took the letter after a colon; the model's final answer differs",
    ),
    "peer-misses-letter": Kind(
        "ours",
        "peer's flexible-extract reads only '(X)', an option's exact text or ': X'; the model wrote "
        "its letter otherwise ('C.', 'C)', '**C**', 'C' alone), so the peer finds none",
    ),
    "ours-reads-past-abstention": Kind(
        "peer",
        "the model declined to answer after the trigger; ours still reads an answer from the reasoning "
        "(a fallback overriding an explicit non-answer), the peer finds none",
    ),
    "both-read-past-abstention": Kind(
        "neither", "the model declined to answer after the trigger; both read some answer from the reasoning"
    ),
    "ours-misreads-trigger": Kind(
        "peer",
        "ours reads something other than the answer the model states after the trigger; the peer reads that answer",
    ),
    "ours-takes-operand": Kind(
        "peer", "the model's answer is an expression; ours takes an operand of it, not its value"
    ),
    "ours-misreads": Kind("peer", "ours reads something other than the model's answer (the gold extraction)"),
    "letter-text-conflict": Kind(
        "unknown",
        "the model names one option by its text and labels it with another option's letter, and ours "
        "did not take the letter; review by hand",
    ),
    "letter-label-wins": Kind(
        "ours",
        "the model labels its answer with an option letter ('(C) False, False') whose text is another "
        "option's; by the documented rule (docs/evaluate.md: a written option letter is the explicit "
        "answer, an option's text never overrides it) ours takes the letter; the peer reads none or another",
    ),
    "second-answer-after-trigger": Kind(
        "unknown",
        "after its answer to the trigger the model states another answer ('The answer is (C)') and "
        "ours did not keep the first; review by hand",
    ),
    "first-answer-after-trigger": Kind(
        "ours",
        "after its answer to the trigger the model states another answer without a correction cue; "
        "by the documented rule (docs/evaluate.md: the first answer after the trigger counts unless "
        "corrected) ours keeps the first; the peer reads none or the later one",
    ),
    "unclassified": Kind("unknown", "no known kind; review by hand"),
}

# An option letter written as a label: "(C)", "C.", "C)", "C:" (the first one is the model's answer).
_LABEL = re.compile(r"\(([A-J])\)|(?<![A-Za-z])([A-J])[.):](?!\w)")
_ABSTAIN = re.compile(
    r"(?i)\b(?:cannot|can ?not|can't|unable|not (?:possible|enough|given|determin\w*|sure|known"
    r"|provided|specified|clear)|insufficient|unknown|undetermin\w*|no (?:answer|information|way)"
    r"|none of (?:the|these))\b"
)


def segments(case: Case, trigger: str | None) -> tuple[int, int]:
    """Offsets in the transcript where the trigger starts and where its continuation starts."""
    if case.trigger_output is None or not trigger:
        n = len(case.answer)
        return n, n
    start = len(case.answer.rstrip()) + 1
    return start, start + len(trigger)


def first_answer_in_continuation(task: str, continuation: str, choices: dict[str, str]) -> str | None:
    """The first number, or the choice (a letter written as one, or an option's whole text), that the
    continuation states, an echoed trigger or letter range skipped: a check of our reading that shares
    nothing with our extractors."""
    labels = "".join(choices) or "ABCD"
    text = re.sub(
        r"(?i)therefore,?\s*(?:among\s+\w+\s+through\s+\w+,?\s*)?the\s+answer(?:\s*\([^)]*\))?\s+is", " ", continuation
    )
    text = re.sub(rf"(?i)\b[{labels}]\s+(?:through|to)\s+[{labels}]\b", " ", text)
    if task == "gsm8k":
        num, unit = r"-?\$?\d[\d,]*(?:\.\d+)?", r"(?:\s+[a-z]+){0,2}"
        # an expression is worth its result: "9 * 60 = 540" and "240 minutes * 60 = 14400 minutes" state it
        m = re.search(rf"({num}){unit}(?:\s*[-+*/x×÷]\s*{num}{unit})*(?:\s*=\s*({num}))?", text)
        return canon_number(m.group(2) or m.group(1)) if m else None
    m = re.search(rf"(?<![A-Za-z'])\(?([{labels}])\)?(?=[.,:;)]|[ \t]*(?:\n|$))", text)
    if m:
        return m.group(1)
    first_line = text.strip().split("\n")[0].strip().rstrip(".").lower()
    named = [lab for lab, t in choices.items() if t.strip().rstrip(".").lower() == first_line]
    return named[0] if len(named) == 1 else None


def bare_answer(text: str, choices: dict[str, str]) -> str | None:
    """The option an answer names when its first line is nothing but a letter, '(X)' or an option's text."""
    line = text.strip().split("\n")[0].strip().rstrip(".").strip()
    if re.fullmatch(r"\(?[A-Z]\)?", line) and line.strip("()") in choices:
        return line.strip("()")
    named = [lab for lab, t in choices.items() if t.strip().rstrip(".").lower() == line.lower()]
    return named[0] if len(named) == 1 else None


def restated_answers(task: str, continuation: str) -> list[str]:
    """Answers the continuation states again with a cue ('The answer is (C)'), before any invented question."""
    text = re.split(r"\n\s*(?:Question|Q)\s*:", continuation)[0].rstrip()
    if task == "gsm8k":
        hits = [
            (m, canon_number(m.group(1)))
            for m in re.finditer(r"(?i)answer\s+is\s*:?\s*\$?(-?\d[\d,]*(?:\.\d+)?)", text)
        ]
    else:
        hits = [(m, m.group(1)) for m in re.finditer(r"(?i:answer\s+is)\s*:?\s*\(?([A-Z])\)?(?![A-Za-z])", text)]
    return [v for m, v in hits if v and m.end() < len(text)]  # one the token limit cut ('is 4' of 400) is none


def letter_text_conflict(text: str, choices: dict[str, str]) -> bool:
    """An option's text labelled with another option's letter: 'False, False (D)' where D is 'False, True'."""
    for label, option in choices.items():
        body = re.escape(option.strip().rstrip("."))
        for m in re.finditer(rf"\(([A-Z])\)\s*{body}(?!\w|\.\d)|(?<![\w.-]){body}\s*\(([A-Z])\)", text):
            if (m.group(1) or m.group(2)) in choices and (m.group(1) or m.group(2)) != label:
                return True
    return False


def classify(case: Case, spec: Any, f: PeerFilter, ours: dict, peer: dict, text: str) -> tuple[str, str]:
    """(kind of the disagreement, who reads it right by that kind: ours, peer or unknown)."""
    trig_start, cont_start = segments(case, spec.trigger)
    filtered, p = peer["filtered"], peer["answer"]
    # Where the peer's string sits: flexible filters take the last match, the others the first.
    pos = (
        (text.rfind(filtered) if "group_select" in json.dumps(f.steps) else text.find(filtered))
        if filtered and filtered != "[invalid]"
        else -1
    )
    in_continuation, in_reasoning = pos >= cont_start, 0 <= pos < trig_start
    from_trigger = bool(ours["extractor"] and str(ours["extractor"]).startswith("trigger"))
    stated = first_answer_in_continuation(case.task, text[cont_start:], case.choices) if case.trigger_output else None
    if case.gold is not NO_GOLD:  # the corpus says whether ours reads it right
        gold = canon_number(case.gold) if case.task == "gsm8k" and case.gold is not None else case.gold
        ours_checked = ours["answer"] == gold
    elif from_trigger:
        ours_checked = stated is not None and stated == ours["answer"]
    else:  # a lenient reading of the answer: checked only when the answer is one bare option
        ours_checked = (
            stated is None and ours["answer"] is not None and bare_answer(case.answer, case.choices) == ours["answer"]
        )
    if case.gold is not NO_GOLD:
        abstains = case.extra.get("status") == "abstained"
    else:
        abstains = case.trigger_output is not None and bool(
            ours.get("abstained") or (stated is None and _ABSTAIN.search(case.trigger_output))
        )

    def kind(name: str) -> tuple[str, str]:
        return name, KINDS[name].right

    if abstains:
        if ours["answer"] is None:
            return kind("peer-credits-abstention")
        return kind("ours-reads-past-abstention" if p is None else "both-read-past-abstention")
    if case.gold is NO_GOLD:  # outputs that state two answers: no reading is sure, a person decides
        # An option's text with another's letter makes two answers, in the words ours read: the trigger
        # continuation up to its first blank line (an invented next question often follows), else the answer.
        read = text[cont_start:].strip().split("\n\n")[0] if from_trigger else case.answer
        if case.task == "mmlu" and letter_text_conflict(read, case.choices):
            label = _LABEL.search(read)
            return kind(
                "letter-label-wins"
                if label and (label.group(1) or label.group(2)) == ours["answer"]
                else "letter-text-conflict"
            )
        if case.trigger_output and any(v != ours["answer"] for v in restated_answers(case.task, text[cont_start:])):
            first = _LABEL.search(text[cont_start:])
            return kind(
                "first-answer-after-trigger"
                if first and (first.group(1) or first.group(2)) == ours["answer"]
                else "second-answer-after-trigger"
            )
    if p == ours["answer"]:  # same reading, different verdict
        return kind("peer-string-match") if case.task == "gsm8k" and ours["correct"] else ("unclassified", "unknown")
    if not ours_checked:
        operand = (
            case.task == "gsm8k"
            and stated is not None
            and any(
                canon_number(m.group(1)) == ours["answer"]
                for m in re.finditer(r"(\d[\d,]*(?:\.\d+)?)(?:\s+[a-z]+){0,2}\s*(?:[-+*/×x÷]|\}\{)", text[cont_start:])
            )
        )
        if case.gold is NO_GOLD:
            if operand:  # ours is wrong; the peer only if it too misses the stated result
                return "ours-takes-operand", "peer" if p == stated else "neither"
            return kind("ours-misreads-trigger") if stated is not None and p == stated else ("unclassified", "unknown")
        if case.task == "gsm8k" and any(
            canon_number(m.group(1)) == ours["answer"]
            for m in re.finditer(r"(\d[\d,]*(?:\.\d+)?)\s*(?:[-+*/×x÷]|\}\{)", text)
        ):
            return kind("ours-takes-operand")
        return kind("ours-misreads")
    if ours["answer"] is None and p is not None:  # the gold corpus says there is no answer to read
        return kind("peer-reads-a-non-answer")
    if case.task == "gsm8k":
        if filtered == "[invalid]":
            return kind("peer-needs-hash-format" if "####" in json.dumps(f.steps) else "peer-needs-answer-is-period")
        if p is None:
            return kind("peer-not-a-number")
        if f.name == "strict-match":
            return kind("peer-first-answer-is") if in_reasoning else ("unclassified", "unknown")
        if pos >= 0 and re.search(r"(?:[-+*/×x÷]|\}\{)\s*\$?$", text[:pos]):
            return kind("peer-takes-operand")
        return kind("peer-last-number-of-continuation" if in_continuation else "peer-last-number-of-reasoning")
    if f.name == "get_response":
        return kind("peer-first-line" if p is None else "peer-first-line-letter")
    if f.name == "strict-match":
        if filtered == "[invalid]":
            cued = re.search(r"answer is |The answer: |The final answer: ", text)
            return kind("peer-capture-lost" if cued else "peer-needs-answer-is")
        return kind("peer-capture-too-long") if p is None else ("unclassified", "unknown")
    if filtered == "[invalid]":
        return kind("peer-misses-letter")
    if re.fullmatch(r"\([A-Z]\)", filtered) and pos >= 0:
        return kind("peer-last-paren-letter")
    if pos < 0 and re.fullmatch(r"\([A-Z]\)", filtered):  # converted from an option text or ': X'
        colon = re.search(rf":\s*{filtered[1]}", text)
        return kind("peer-colon-letter" if colon else "peer-option-text")
    return "unclassified", "unknown"


def judge(case: Case, spec: Any, f: PeerFilter, ours: dict, peer: dict, text: str) -> dict[str, Any]:
    """Which side is right, the status (peer wrong / ours wrong / review) and the kind with its explanation.

    Gold cases are judged by the gold extraction; the model's outputs by the kind of case."""
    kind, right = classify(case, spec, f, ours, peer, text)
    if case.gold is not NO_GOLD:
        gold = canon_number(case.gold) if spec.answer_type == "number" and case.gold is not None else case.gold
        ours_right, peer_right = ours["answer"] == gold, peer["answer"] == gold
        if ours["answer"] == peer["answer"]:  # same reading, different verdict: the one whose verdict is right
            should = gold is not None and gold == (
                canon_number(case.reference) if case.task == "gsm8k" else case.reference
            )
            ours_right, peer_right = ours["correct"] == should, peer["correct"] == should
        right = (
            "ours"
            if ours_right and not peer_right
            else "peer"
            if peer_right and not ours_right
            else "neither"
            if not ours_right
            else "both"
        )
    status = {"ours": "peer wrong", "peer": "ours wrong", "neither": "ours wrong"}.get(right, "review")
    explanation = KINDS[kind].explanation
    if case.gold is not NO_GOLD and right != KINDS[kind].right and kind != "unclassified":
        explanation += f" (the kind says {KINDS[kind].right}, the gold extraction says {right})"
    return {"right": right, "status": status, "kind": kind, "explanation": explanation}


# --- sources ---------------------------------------------------------------------------------------------

CORPUS_FIELDS = ("id", "task", "item", "question", "choices", "output", "trigger_output", "expected")


def read_corpus(path: Path) -> list[Case]:
    """The corpus's GSM8K and MMLU records as cases; each record's reference comes from its mirror item.

    A record: {id, task, item (mirror item id), style, question, choices, output, trigger_output,
    expected: {status: strict|lenient|abstained|failed, value}, note}. Errors name file, line, field."""
    from selfprompt.errors import DataError
    from selfprompt.evaluate.tasks import get_tasks, load_items
    from selfprompt.jsonl import iter_json_lines

    records = []
    for line, row in iter_json_lines(path):
        if row.get("task") not in TASKS:
            continue
        for name in CORPUS_FIELDS:
            if name not in row:
                raise DataError(str(path), line, name, "missing")
        if not isinstance(row["expected"], dict) or "value" not in row["expected"]:
            raise DataError(str(path), line, "expected.value", "missing")
        records.append(row)
    references = {}
    for spec in get_tasks(list(TASKS)):
        if any(r["task"] == spec.name for r in records):
            references.update({(spec.name, i.id): i.answer for i in load_items(spec, data_dir())})
    cases = []
    for row in records:
        reference = references.get((row["task"], row["item"]))
        if reference is None:  # an item the mirror lacks: the gold reading stands in for the reference
            reference = row["expected"]["value"] or ""
        cases.append(
            Case(
                source="gold",
                task=row["task"],
                id=row["id"],
                question=row["question"],
                reference=reference,
                choices=row["choices"] or {},
                answer=row["output"],
                trigger_output=row["trigger_output"],
                gold=row["expected"]["value"],
                extra={"status": row["expected"].get("status"), "item": row["item"]},
                note=" / ".join(x for x in (row.get("style"), row["expected"].get("status"), row.get("note")) if x),
            )
        )
    return cases


def generation_settings(args: argparse.Namespace) -> dict[str, Any]:
    """Everything that decides the model's outputs: the cache holds only while all of it is unchanged."""
    from selfprompt.evaluate.runner import TRIGGER_MAX_TOKENS
    from selfprompt.evaluate.tasks import get_tasks
    from selfprompt.models import resolve_model

    model = resolve_model(args.model)
    weights = model.gguf_path if args.backend == "llamacpp" else None
    return {
        "model": args.model,
        "model_name": model.name,
        "model_sha256": _sha256(Path(weights)) if weights else None,
        "backend": args.backend,
        "condition": "plain",
        "tasks": list(TASKS),
        "items_per_task": args.items,
        "item_selection": "first N of the test split, mirror file order",
        "max_tokens": args.max_tokens,
        "trigger_max_tokens": TRIGGER_MAX_TOKENS,
        "temperature": 0.0,
        "triggers": {s.name: s.trigger for s in get_tasks(list(TASKS))},
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def machine() -> dict[str, Any]:
    try:
        from selfprompt.hardware import machine_facts

        return machine_facts()
    except ImportError:
        return {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        }


def model_outputs(args: argparse.Namespace) -> tuple[list[Case], dict[str, Any]]:
    """The default model's outputs, generated by `selfprompt eval` once and cached in WORK/generations.json."""
    cache = Path(args.work) / "generations.json"
    settings = generation_settings(args)
    previous: dict[str, Any] = {}
    if cache.exists() and not args.regenerate:
        stored = json.loads(cache.read_text(encoding="utf-8"))
        if stored["settings"] == settings:
            return [Case(**row) for row in stored["rows"]], {**stored["meta"], "cache": _shown(cache), "reused": True}
        print(f"{cache}: settings differ, generating again")
        previous = stored["meta"] if stored["meta"].get("model_id") else {}
    from selfprompt.evaluate.runner import EvalConfig, run_eval
    from selfprompt.evaluate.tasks import get_tasks, load_items, select_items
    from selfprompt.generate.backends import get_backend
    from selfprompt.manifest import git_commit, package_versions

    out = Path(args.work) / "eval"
    config = EvalConfig(
        model=args.model,
        backend=args.backend,
        tasks=list(TASKS),
        conditions=["plain"],
        data_dir=str(data_dir()),
        out=str(out),
        limit=args.items,
        seed=None,
        max_tokens=args.max_tokens,
        batch_size=8,
    )
    before = _generation_rows(out)
    load = os.getloadavg()[0]
    started = time.perf_counter()
    options = {"n_threads": args.threads} if args.threads and args.backend == "llamacpp" else {}
    backend = get_backend(args.backend, model=args.model, batch_size=8, **options)
    try:
        results = run_eval(config, backend=backend)
    finally:
        backend.close()
    generated = {
        "new_generations": _generation_rows(out) - before,
        "seconds": round(time.perf_counter() - started, 1),
        "selfprompt_commit": git_commit(),
        "packages": package_versions(),
        "machine": machine(),
        "load_average_1min_at_start": load,
        "threads": args.threads,
    }
    if generated["new_generations"] == 0 and previous.get("generated"):
        generated = previous["generated"]  # all served by the eval's own cache: the facts of the run that made them
    rows = []
    for spec in get_tasks(list(TASKS)):
        items = {i.id: i for i in select_items(load_items(spec, data_dir()), args.items, None)}
        for line in (out / "items" / f"{spec.name}__plain.jsonl").read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            rows.append(
                {
                    "source": "model",
                    "task": spec.name,
                    "id": r["id"],
                    "question": r["question"],
                    "reference": r["reference"],
                    "choices": items[r["id"]].choices,
                    "answer": r["answer"],
                    "trigger_output": r["trigger_output"],
                }
            )
    meta = {
        "model_id": results["model"],
        "backend": results["backend"],
        "data_dir": str(data_dir()),
        "generated": generated,
    }
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"settings": settings, "meta": meta, "rows": rows}, indent=1) + "\n", encoding="utf-8")
    return [Case(**row) for row in rows], {**meta, "cache": _shown(cache), "reused": False}


def _shown(path: Path) -> str:
    """A path as the result shows it: relative to the repository when inside it."""
    path = path.resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def _generation_rows(out: Path) -> int:
    """Rows in the eval's generation cache: how many a run added tells generated from reused."""
    return sum(len(p.read_text(encoding="utf-8").splitlines()) for p in (out / "generations").glob("*.jsonl"))


def data_dir() -> Path:
    return Path(os.environ.get("SELFPROMPT_DATA_DIR", REPO.parent / "shared" / "data"))


# --- the run ---------------------------------------------------------------------------------------------


def score_source(cases: list[Case], specs: dict[str, Any], filters: list[PeerFilter]) -> dict[str, Any]:
    """Per task: items, and per peer filter the agreement rate and every disagreement."""
    out: dict[str, Any] = {}
    for task in TASKS:
        task_cases = [c for c in cases if c.task == task]
        if not task_cases:
            continue
        spec = specs[task]
        entry: dict[str, Any] = {"n_items": len(task_cases), "filters": {}}
        per_filter: dict[str, list] = {f.id: [] for f in filters if f.task == task}
        gold_misses = []
        for case in task_cases:
            rows = compare(case, spec, filters)
            for row in rows:
                per_filter[row["filter"]].append((case, row))
            if case.gold is not NO_GOLD and rows:
                ours = rows[0]["ours"]
                gold = canon_number(case.gold) if spec.answer_type == "number" and case.gold is not None else case.gold
                if ours["answer"] != gold:
                    gold_misses.append(
                        {"id": case.id, "ours": ours["answer"], "gold": gold, "extractor": ours["extractor"]}
                    )
        for fid, pairs in per_filter.items():
            disagreements = [disagreement(c, r) for c, r in pairs if not r["agree"]]
            entry["filters"][fid] = {
                "n": len(pairs),
                "agree": len(pairs) - len(disagreements),
                "agreement_rate": round((len(pairs) - len(disagreements)) / len(pairs), 4),
                "ours_accuracy": round(sum(r["ours"]["correct"] for _, r in pairs) / len(pairs), 4),
                "peer_accuracy": round(sum(r["peer"]["correct"] for _, r in pairs) / len(pairs), 4),
                "by_status": _count(d["status"] for d in disagreements),
                "by_kind": _count(d["kind"] for d in disagreements),
                "disagreements": disagreements,
            }
        if any(c.gold is not NO_GOLD for c in task_cases):
            entry["ours_vs_gold"] = {"n": len(task_cases), "wrong": len(gold_misses), "items": gold_misses}
        out[task] = entry
    return out


def disagreement(case: Case, row: dict[str, Any]) -> dict[str, Any]:
    d = {"id": case.id, "output": case.answer, "trigger_output": case.trigger_output, "reference": case.reference}
    if case.gold is not NO_GOLD:
        d["gold"] = case.gold
    if case.note:
        d["note"] = case.note
    ours = row["ours"]
    d["ours"] = {
        "answer": ours["answer"],
        "strict": ours["strict"],
        "extractor": ours["extractor"],
        "abstained": ours["abstained"],
        "correct": ours["correct"],
    }
    d["peer"] = {
        "filtered": row["peer"]["filtered"],
        "answer": row["peer"]["answer"],
        "correct": row["peer"]["correct"],
        "target": row["peer"]["target"],
    }
    d.update({k: row[k] for k in ("right", "status", "kind", "explanation")})
    return d


def _count(values) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return counts


def summary(sources: dict[str, Any]) -> dict[str, Any]:
    """Counts by status, and every disagreement that is ours to fix or to review."""
    by_status: dict[str, int] = {}
    to_fix, to_review = [], []
    for source, tasks in sources.items():
        if not isinstance(tasks, dict) or "tasks" not in tasks:
            continue
        for task, entry in tasks["tasks"].items():
            for fid, res in entry["filters"].items():
                for d in res["disagreements"]:
                    by_status[d["status"]] = by_status.get(d["status"], 0) + 1
                    ref = {
                        "source": source,
                        "task": task,
                        "filter": fid,
                        "id": d["id"],
                        "ours": d["ours"]["answer"],
                        "peer": d["peer"]["answer"],
                        "kind": d["kind"],
                    }
                    if d["status"] == "ours wrong":
                        to_fix.append(ref)
                    elif d["status"] == "review":
                        to_review.append(ref)
            if entry.get("ours_vs_gold", {}).get("wrong"):
                to_fix += [
                    {"source": source, "task": task, "filter": None, **m} for m in entry["ours_vs_gold"]["items"]
                ]
    return {"disagreements_by_status": by_status, "ours_wrong": to_fix, "review": to_review}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--corpus",
        default="tests/gold/extraction.jsonl",
        help="Gold extraction corpus (JSONL); only its GSM8K and MMLU items are scored.",
    )
    parser.add_argument("--no-corpus", action="store_true", help="Score the model's outputs only.")
    parser.add_argument("--no-model", action="store_true", help="Score the gold corpus only.")
    parser.add_argument("--items", type=int, default=50, help="First N test items of GSM8K and of MMLU.")
    parser.add_argument("--max-tokens", type=int, default=128, help="New tokens of the answering turn.")
    parser.add_argument("--model", default="default", help="Model spec (the embedded default by default).")
    parser.add_argument("--backend", default="llamacpp", help="Backend that generates the model's outputs.")
    parser.add_argument(
        "--work",
        default=str(REPO / "runs" / "bench" / "scorer_agreement"),
        help="Folder of the eval run and its generation cache (generations.json).",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="llama.cpp threads (default: the usable cores); 1 on a busy machine, where threads "
        "that wait on each other crawl.",
    )
    parser.add_argument("--regenerate", action="store_true", help="Generate again even when the cache fits.")
    parser.add_argument("--out", default=str(RESULT), help="Result JSON.")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import lm_eval

    import selfprompt
    from selfprompt.evaluate.tasks import get_tasks
    from selfprompt.manifest import git_commit

    filters = load_peer_filters()
    specs = {s.name: s for s in get_tasks(list(TASKS))}
    sources: dict[str, Any] = {}
    if not args.no_corpus:
        corpus = Path(args.corpus) if Path(args.corpus).is_absolute() else REPO / args.corpus
        if not corpus.exists():
            raise SystemExit(f"{corpus}: gold corpus not found (pass --corpus PATH, or --no-corpus)")
        cases = read_corpus(corpus)
        sources["gold"] = {"path": _shown(corpus), "n_items": len(cases), "tasks": score_source(cases, specs, filters)}
    if not args.no_model:
        cases, generation = model_outputs(args)
        sources["model"] = {
            "generation": {**generation_settings(args), **generation},
            "n_items": len(cases),
            "tasks": score_source(cases, specs, filters),
        }
    result = {
        "benchmark": "scorer agreement: selfprompt's GSM8K and MMLU extraction vs lm-evaluation-harness's filters",
        "peer": {
            "package": "lm_eval",
            "version": lm_eval.__version__,
            "input": "the answering turn, a newline, the trigger and its continuation, as one text",
            "filters": [f.describe() for f in filters],
        },
        "ours": {
            "entry_point": "selfprompt.evaluate.runner.score_item (lenient answer, which `correct` uses)",
            "selfprompt": _shown(Path(selfprompt.__file__).parent),
            "commit": git_commit(),
            "tasks": {
                n: {"version": s.version, "trigger": s.trigger, "extractors": s.extractors} for n, s in specs.items()
            },
        },
        "statuses": {
            "peer wrong": "ours reads the output right, the peer does not (the kind says why)",
            "ours wrong": "ours reads it wrong: a fault to fix, never to keep",
            "review": "the model's output, of no known kind: read by hand",
        },
        "kinds": {k: {"right": r, "explanation": e} for k, (r, e) in KINDS.items()},
        "sources": sources,
        "summary": summary(sources),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for source, entry in sources.items():
        for task, t in entry["tasks"].items():
            for fid, res in t["filters"].items():
                print(
                    f"{source:5} {task:5} {fid:55} n={res['n']:3} agree={res['agreement_rate']:.0%} {res['by_status']}"
                )
    print(json.dumps(result["summary"]["disagreements_by_status"]), "->", out)


if __name__ == "__main__":
    main()
