"""Answer extraction: a named chain of extractors per task, run on the answer part only.

The role is parsed out of the model's output first (`selfprompt.format`), so a number or a
letter inside "From now on, you are an expert with 20 years ..." is never taken as the answer.
Then the task's chain runs in order. The first extractor is the strict one (usually the
second-pass trigger, as in Kojima et al. 2022 and Kong et al. 2023); the rest are lenient
fallbacks for what real models write: "The answer is $1,234.", "(B)", "B. library",
"Answer: yes", a quoted "yajo", a ```python block.

Every extractor takes an `ExtractInput` and returns the normalized answer or None.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from selfprompt.errors import ConfigError


@dataclass(frozen=True)
class ExtractInput:
    answer: str  # the model's answer text, role removed
    trigger_output: str | None = None  # the second-pass continuation after the trigger, if run
    choices: dict[str, str] = field(default_factory=dict)  # label -> text, for choice tasks
    entry_point: str | None = None  # HumanEval function name


@dataclass(frozen=True)
class Extraction:
    strict: str | None  # what the chain's first extractor found
    lenient: str | None  # what the first matching extractor found
    extractor: str | None  # name of the extractor that gave `lenient`
    tried: list[str]  # the chain as run (trigger extractors drop out when there is no trigger output)


# --- numbers --------------------------------------------------------------------------------

# Thousands groups only when exactly three digits follow the comma, so "1, 2, 3" stays three
# numbers; a minus sign only when it is not a binary minus ("5-3" is 5 and 3, not 5 and -3).
NUMBER = r"(?:(?<![\w)\]])-)?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|(?:(?<![\w)\]])-)?\.\d+"
_NUMBER_RE = re.compile(NUMBER)


def normalize_number(text: str) -> str | None:
    """'1,234.50' -> '1234.5', '$18.00' -> '18', '-3' -> '-3'; None when there is no number."""
    m = _NUMBER_RE.search(text.replace("−", "-"))
    if not m:
        return None
    value = float(m.group(0).replace(",", ""))
    if value.is_integer():
        return str(int(value))
    return f"{value:.6f}".rstrip("0").rstrip(".")


def _numbers(text: str) -> list[str]:
    return [n for m in _NUMBER_RE.finditer(text.replace("−", "-")) if (n := normalize_number(m.group(0)))]


_ANSWER_IS = r"(?i:(?:final\s+answer|answer|result|total)\s*(?:is|was|would\s+be|will\s+be|equals|=|:)\s*:?)"


def trigger_number(x: ExtractInput) -> str | None:
    nums = _numbers(x.trigger_output or "")
    return nums[0] if nums else None


def answer_is_number(x: ExtractInput) -> str | None:
    hits = re.findall(_ANSWER_IS + r"\s*\**\s*(?:[$€£]\s*)?(" + NUMBER + ")", x.answer)
    return normalize_number(hits[-1]) if hits else None


def boxed_number(x: ExtractInput) -> str | None:
    hits = re.findall(r"\\boxed\{([^{}]*)\}", x.answer)
    return normalize_number(hits[-1]) if hits else None


def last_number(x: ExtractInput) -> str | None:
    nums = _numbers(x.answer)
    return nums[-1] if nums else None


# --- letter choices --------------------------------------------------------------------------

def _labels(x: ExtractInput) -> str:
    return "".join(x.choices) or "ABCDE"


def _first_choice_letter(text: str, labels: str) -> str | None:
    """The first choice letter written as a choice: '(B)', 'B)', 'B.', 'B:', or 'B' alone."""
    pattern = rf"\(([{labels}])\)|(?<![\w'])([{labels}])(?=[).:,]|\s*$|\s+(?:is|was|because|-|–))|(?<![\w'])([{labels}])(?![\w'])(?!\s+[a-z])"
    m = re.search(pattern, text)
    return next(g for g in m.groups() if g) if m else None


def _option_text(text: str, choices: dict[str, str]) -> str | None:
    """The label of the only choice whose text appears in `text` (a longer choice wins over its substrings)."""
    low = text.lower()
    found = {lab: t for lab, t in choices.items() if t and re.search(rf"(?<!\w){re.escape(t.lower())}(?!\w)", low)}
    # "department store" also contains "store": keep only choices not inside another found choice
    found = {lab: t for lab, t in found.items() if not any(t.lower() in o.lower() and t != o for o in found.values())}
    return next(iter(found)) if len(found) == 1 else None


def trigger_choice(x: ExtractInput) -> str | None:
    if not x.trigger_output:
        return None
    return _first_choice_letter(x.trigger_output, _labels(x)) or _option_text(x.trigger_output, x.choices)


def answer_is_choice(x: ExtractInput) -> str | None:
    labels = _labels(x)
    pattern = (r"(?i:(?:answer|option|choice)\s*(?:is|would\s+be|will\s+be|:)?\s*:?\s*(?:option|choice)?\s*)"
               rf"\**\(?([{labels}])\)?\**(?![\w'])")
    hits = re.findall(pattern, x.answer)
    return hits[-1] if hits else None


def paren_choice(x: ExtractInput) -> str | None:
    hits = set(re.findall(rf"\(([{_labels(x)}])\)", x.answer))
    return hits.pop() if len(hits) == 1 else None  # several different letters: a list of options, not an answer


def line_choice(x: ExtractInput) -> str | None:
    hits = set(re.findall(rf"(?m)^\s*\**([{_labels(x)}])[.):]\**(?:\s|$)", x.answer))
    return hits.pop() if len(hits) == 1 else None


def option_text(x: ExtractInput) -> str | None:
    return _option_text(x.answer, x.choices)


# --- yes / no ---------------------------------------------------------------------------------

_YES_NO = re.compile(r"(?i)(?<!\w)(yes|no)(?!\w)")


def trigger_yes_no(x: ExtractInput) -> str | None:
    m = _YES_NO.search(x.trigger_output or "")
    return m.group(1).lower() if m else None


def answer_is_yes_no(x: ExtractInput) -> str | None:
    hits = re.findall(_ANSWER_IS + r"\s*\**\s*[\"']?(yes|no)(?!\w)", x.answer, re.IGNORECASE)
    return hits[-1].lower() if hits else None


def first_yes_no(x: ExtractInput) -> str | None:
    m = _YES_NO.search(x.answer)
    return m.group(1).lower() if m else None


def last_yes_no(x: ExtractInput) -> str | None:
    hits = _YES_NO.findall(x.answer)
    return hits[-1].lower() if hits else None


# --- free words (last-letter concatenation) -------------------------------------------------------

_QUOTED = re.compile(r"[\"“'‘*]([A-Za-z]+)[\"”'’*]")


def trigger_word(x: ExtractInput) -> str | None:
    text = x.trigger_output or ""
    quoted = _QUOTED.search(text)
    if quoted:
        return quoted.group(1).lower()
    m = re.search(r"[A-Za-z]+", text)
    return m.group(0).lower() if m else None


def answer_is_word(x: ExtractInput) -> str | None:
    hits = re.findall(_ANSWER_IS + r"\s*[\"“'‘*]*([A-Za-z]+)", x.answer)
    return hits[-1].lower() if hits else None


def quoted_word(x: ExtractInput) -> str | None:
    hits = _QUOTED.findall(x.answer)
    return hits[-1].lower() if hits else None


def last_word(x: ExtractInput) -> str | None:
    hits = re.findall(r"[A-Za-z]+", x.answer)
    return hits[-1].lower() if hits else None


# --- code -----------------------------------------------------------------------------------------

_FENCE = re.compile(r"```[ \t]*(?:python|py|python3)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL | re.IGNORECASE)


def code_block(x: ExtractInput) -> str | None:
    """The fenced block that defines the entry point, else the first fenced block."""
    blocks = [b for b in _FENCE.findall(x.answer) if b.strip()]
    if not blocks:
        return None
    if x.entry_point:
        for b in blocks:
            if re.search(rf"def\s+{re.escape(x.entry_point)}\s*\(", b):
                return b
    return blocks[0]


def code_raw(x: ExtractInput) -> str | None:
    """Unfenced code: the answer itself when it looks like Python (a def, a return, or indented lines)."""
    if re.search(r"(?m)^\s*(def |return\b|for |if |import |from )", x.answer):
        return x.answer
    return None


EXTRACTORS: dict[str, Callable[[ExtractInput], str | None]] = {
    "trigger-number": trigger_number, "answer-is-number": answer_is_number,
    "boxed-number": boxed_number, "last-number": last_number,
    "trigger-choice": trigger_choice, "answer-is-choice": answer_is_choice, "paren-choice": paren_choice,
    "line-choice": line_choice, "option-text": option_text,
    "trigger-yes-no": trigger_yes_no, "answer-is-yes-no": answer_is_yes_no,
    "first-yes-no": first_yes_no, "last-yes-no": last_yes_no,
    "trigger-word": trigger_word, "answer-is-word": answer_is_word, "quoted-word": quoted_word, "last-word": last_word,
    "code-block": code_block, "code-raw": code_raw,
}


def check_chain(chain: list[str]) -> None:
    unknown = [n for n in chain if n not in EXTRACTORS]
    if unknown:
        raise ConfigError(f"unknown extractor(s) {', '.join(unknown)}; valid: {', '.join(EXTRACTORS)}")


def extract(chain: list[str], x: ExtractInput) -> Extraction:
    """Run the chain. Without a trigger pass, the trigger extractors drop out and the next one is strict."""
    check_chain(chain)
    tried = [n for n in chain if not (n.startswith("trigger-") and x.trigger_output is None)]
    results = [(name, EXTRACTORS[name](x)) for name in tried]
    strict = results[0][1] if results else None
    hit = next(((n, v) for n, v in results if v is not None), (None, None))
    return Extraction(strict=strict, lenient=hit[1], extractor=hit[0], tried=tried)


def is_correct(answer_type: str, predicted: str | None, reference: str) -> bool:
    """Compare a normalized prediction with the reference (code is judged by execution, not here)."""
    if predicted is None:
        return False
    if answer_type == "number":
        ref = normalize_number(reference)
        return ref is not None and abs(float(predicted) - float(ref)) < 1e-6
    if answer_type in ("yes_no", "text"):
        return predicted.strip().lower() == reference.strip().lower()
    return predicted.strip() == reference.strip()
