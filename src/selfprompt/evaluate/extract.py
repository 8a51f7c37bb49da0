"""Answer extraction: a named chain of extractors per task, run on the answer part only.

The role is parsed out of the model's output first (`selfprompt.format`), so a number or a
letter inside "From now on, you are an expert with 20 years ..." is never taken as the answer.

The policy is precision first (docs/evaluate.md, "Extraction"):

- **strict** is what the chain's first extractor reads: the second-pass continuation after the
  trigger (Kojima et al. 2022; Kong et al. 2023), or without a trigger pass the first answer
  extractor. In the trigger continuation the first thing the model states counts.
- **lenient** equals strict when strict found an answer; only when strict found none do the
  fallbacks read the first-pass answer ("The answer is $1,234.", "(B)", "B. library", a quoted
  "yajo", a ```python block). In that text the last stated answer counts.
- **abstained**: an explicit non-answer ("cannot be determined", "unknown", "not enough
  information", "none of the above", a refusal, a hedge between candidates such as "A or C").
  It is never credited, and no fallback may replace it: in the trigger it ends extraction; in the
  first pass, after it only an explicitly marked answer (a cue such as "the answer is", a
  `\\boxed{}`) or a self-correction counts, never a bare number or option text from reasoning.
- **choice letters**: a letter written as a label ("(C)", "C.", "**C**", "Answer: C", a boxed C) is the
  explicit answer; an option's text, before or after it and whichever option it is, never overrides it
  ("(C) False, False" is C though "False, False" is B's text). Text counts only where no label is written.

Before any extractor reads a text it is cleaned: LaTeX and markdown wrappers are unwrapped
(`$\\boxed{\\text{B}}$`, `**B**`), and what the model merely echoes is removed: the trigger
itself, option ranges ("among A through E", "(Yes or No)", "(arabic numerals)"), lists of the
options, and spans restating the question. A self-correction ("wait, actually ...") makes the
text after it decide. A new question the model invents ("\\n\\nQuestion: ...") is cut off.

An extractor is `find(text, x) -> str | Abstain | None` over a cleaned text; `extract` runs the
chain. The registry `EXTRACTORS` names them for task files.
"""

from __future__ import annotations

import ast
import operator
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from selfprompt.errors import ConfigError


@dataclass(frozen=True)
class ExtractInput:
    answer: str  # the model's answer text, role removed
    trigger_output: str | None = None  # the second-pass continuation after the trigger, if run
    choices: dict[str, str] = field(default_factory=dict)  # label -> text, for choice tasks
    entry_point: str | None = None  # HumanEval function name
    question: str | None = None  # the question as asked: a restatement of it is never the answer
    trigger: str | None = None  # the trigger text: an echo of it is never the answer


@dataclass(frozen=True)
class Abstain:
    """An explicit non-answer found in a text; `phrase` is the words that declined."""

    phrase: str


Found = str | Abstain | None


@dataclass(frozen=True)
class Extraction:
    strict: str | None  # the answer read by the chain's first extractor (the trigger pass when run)
    lenient: str | None  # strict, or when strict found nothing, what a fallback found
    extractor: str | None  # the extractor that gave `lenient` or met the abstention; None on failure
    tried: list[str]  # the chain as run (trigger extractors drop out when there is no trigger output)
    abstained: bool = False  # an explicit non-answer; strict and lenient are then None
    abstention: str | None = None  # the words of that non-answer

    @property
    def status(self) -> Literal["strict", "lenient", "abstained", "failed"]:
        if self.abstained:
            return "abstained"
        if self.strict is not None:
            return "strict"
        return "lenient" if self.lenient is not None else "failed"


Kind = Literal["number", "choice", "yes_no", "text", "code"]


# --- cleaning ---------------------------------------------------------------------------------------


def _brace_end(text: str, open_at: int) -> int:
    """Index just past the brace that closes the '{' at `open_at` (end of text when unclosed)."""
    depth = 0
    for i in range(open_at, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i + 1
    return len(text)


def _rewrite_command(text: str, names: str, render: Callable[[list[str]], str], arity: int = 1) -> str:
    """Replace every \\name{a}{b}... (names: regex alternation) by render([a, b, ...]), innermost last."""
    pattern = re.compile(rf"\\(?:{names})\s*(?=\{{)")
    while m := pattern.search(text):
        args, pos = [], m.end()
        for _ in range(arity):
            while pos < len(text) and text[pos].isspace():
                pos += 1
            if pos >= len(text) or text[pos] != "{":
                break
            end = _brace_end(text, pos)
            args.append(text[pos + 1 : end - 1] if text[end - 1 : end] == "}" else text[pos + 1 : end])
            pos = end
        args += [""] * (arity - len(args))
        text = text[: m.start()] + render(args) + text[pos:]
    return text


_LATEX_WRAPPERS = (
    r"text|textbf|textit|textrm|texttt|textsf|mathrm|mathbf|mathit|mathsf|mathtt|emph|mbox|"
    r"operatorname|underline|bm|boldsymbol|color\{[^{}]*\}"
)
_LATEX_SYMBOLS = [
    (r"\\times\b", " × "),
    (r"\\cdot\b", " · "),
    (r"\\div\b", " ÷ "),
    (r"\\%", "%"),
    (r"\\\$", "$"),
    (r"\{,\}", ","),
    (r"\\[,;:! ]", ""),
    (r"\\left\b|\\right\b", ""),
    (r"\\[()\[\]]", " "),
    (r"\\quad\b|\\qquad\b", " "),
    (r"\\(?:approx|sim)\b", "≈"),
    (r"\\(?:neq|ne)\b", "≠"),
]


def _clean(text: str, kind: Kind) -> str:
    """Unicode, LaTeX, markdown and HTML wrappers off; \\boxed{} kept (boxed extractors read it)."""
    text = unicodedata.normalize("NFC", text)
    text = text.translate(
        {
            0x2212: "-",
            0x2013: "-",
            0xA0: " ",
            0x202F: " ",
            0x2009: " ",
            0x201C: '"',
            0x201D: '"',
            0x201E: '"',
            0x00AB: '"',
            0x00BB: '"',
            0x2018: "'",
            0x2019: "'",
        }
    )
    text = re.sub(r"\\fbox\s*(?=\{)", r"\\boxed", text)
    text = _rewrite_command(text, r"[dt]?frac", lambda a: f"(({a[0]})/({a[1]}))", arity=2)
    text = _rewrite_command(text, _LATEX_WRAPPERS, lambda a: a[0])
    for pattern, repl in _LATEX_SYMBOLS:
        text = re.sub(pattern, repl, text)
    text = re.sub(r"(?m)^\s*#{3,}\s*(?=[$€£-]?\s*\d)", "Answer: ", text)  # GSM8K's "#### 18"
    text = re.sub(r"(?m)^\s*#{1,6}\s+", "", text)
    text = re.sub(r"(?m)^\s*>\s?", "", text)
    text = re.sub(r"</?[A-Za-z][\w-]*\s*/?>", " ", text)
    if kind == "text":  # a word in bold or in a code span is marked as a quoted word is
        text = re.sub(r"\*\*([^\W\d_]+)\*\*|`([^\W\d_]+)`", lambda m: f'"{m.group(1) or m.group(2)}"', text)
    text = text.replace("`", "")
    if kind == "number":
        # '$' stays as currency; as a math delimiter it goes. '*' stays only as multiplication.
        text = re.sub(r"\$(?!\s*[-\d.])", " ", text)
        text = re.sub(r"(?<![\d)\s])\*+|\*+(?![\s\d($])", "", text)
    elif kind == "choice":  # '*' between numbers is multiplication ("2 * 2 = 4"); elsewhere markdown
        text = text.replace("$", " ")
        text = re.sub(r"(?<![\d)\s])\*+|\*+(?![\s\d($])", "", text)
        text = re.sub(r"(?<!\d)\s*\*+\s*(?!\s*\d)|(?<!\d\s)\*+(?=\s)", " ", text)
    else:
        text = text.replace("$", " ").replace("*", "")
    return re.sub(r"(?<!\w)__|__(?!\w)|(?<![\w\\])_(?=\S)|(?<=\S)_(?!\w)", "", text)


def _words_pattern(phrase: str) -> str:
    """A phrase as a regex that tolerates any whitespace between its words."""
    return r"\s*".join(re.escape(w) for w in phrase.split()) if phrase.strip() else r"(?!)"


def _remove_echoes(text: str, x: ExtractInput, kind: Kind) -> str:
    """Remove the echoed trigger and echoed option ranges: words in them are never the answer."""
    if x.trigger:  # the trigger ends in an answer cue: keep the cue, drop the words it echoes
        text = re.sub(_words_pattern(x.trigger.rstrip(" :")) + r"\s*:?", " Answer: ", text, flags=re.IGNORECASE)
    text = re.sub(r"(?i)\(?\s*\barabic\s+numerals?\b\s*\)?", " ", text)
    text = re.sub(r"(?i)\banswer\s+choices\s*:", " ", text)
    text = re.sub(r"(?i)\(\s*yes\s*(?:or|/)\s*no\s*\)|\byes\s*(?:or|/)\s*no\b(?=\s*:|\s+question)", " ", text)
    if kind == "choice":
        letter = r"\(?[A-Z]\)?"
        text = re.sub(
            rf"\b(?:[Aa]mong|[Ff]rom|[Bb]etween)\s+(?:the\s+(?:choices|options)\s+)?{letter}\s*"
            rf"(?:through|thru|to|-)\s*{letter}(?![\w'])",
            " ",
            text,
        )
        labels = "".join(x.choices) or "ABCDE"  # "between A and E" spans every option: an echo, not a hedge
        text = re.sub(
            rf"\b(?:[Aa]mong|[Bb]etween)\s+(?:the\s+(?:choices|options)\s+)?\(?{labels[0]}\)?\s*and\s*"
            rf"\(?{labels[-1]}\)?(?![\w'])",
            " ",
            text,
        )
        text = re.sub(rf"(?<![\w'])\(?[A-Z]\)?\s+(?:through|thru)\s+{letter}(?![\w'])", " ", text)
        text = re.sub(rf"(?i:\b(?:options?|choices?|letters?)\s+)\(?[A-Z]\)?\s*-\s*{letter}(?![\w'])", " ", text)
        # A whole statement that names three or more options joined by "and" ("A, B, C, D and E.") picks
        # them all: a non-answer, never its first letter.
        if re.fullmatch(r"\s*(?:\(?[A-Z]\)?\s*,?\s*){2,}and\s+\(?[A-Z]\)?\s*[.!]?\s*", text):
            return " all of them. "
        # "A, B, C or D": three or more labels in a row are an enumeration, not a pick
        text = re.sub(
            r"(?<![\w'])(?:\(?[A-Z]\)?\s*(?:,|/|\bor\b|\band\b)\s*){2,}(?:or\s+|and\s+)?\(?[A-Z]\)?"
            r"(?![\w'])",
            " ",
            text,
        )
        text = re.sub(r"\(\s*\)", " ", text)
    return text


def _remove_option_lists(text: str, choices: dict[str, str]) -> str:
    """Two or more '(A) text' entries in a row are the question's option list echoed."""
    if not choices:
        return text
    entries = [
        re.compile(rf"(?<![\w(])\(?{re.escape(label)}[).:]\s*{_words_pattern(body)}", re.IGNORECASE)
        for label, option in choices.items()
        if (body := _strip_option(_clean(option, "choice")))
    ]
    hits = sorted((m.start(), m.end()) for p in entries for m in p.finditer(text))
    runs: list[list[tuple[int, int]]] = []
    for start, end in hits:
        gap = text[runs[-1][-1][1] : start] if runs and start >= runs[-1][-1][1] else None
        if gap is not None and re.fullmatch(r"[\s,;.]*(?:or|and)?[\s,;]*", gap):
            runs[-1].append((start, end))
        else:
            runs.append([(start, end)])
    for run in reversed([r for r in runs if len(r) >= 2]):
        text = text[: run[0][0]] + " " + text[run[-1][1] :]
    return text


_TOKEN = re.compile(r"[^\W_]+")
_NGRAM = 5


def _remove_restated_question(text: str, question: str | None) -> str:
    """Spans of five or more words copied from the question are a restatement, never the answer."""
    if not question:
        return text
    q = [t.lower() for t in _TOKEN.findall(unicodedata.normalize("NFC", question))]
    grams = {tuple(q[i : i + _NGRAM]) for i in range(len(q) - _NGRAM + 1)}
    toks = list(_TOKEN.finditer(text))
    covered = [False] * len(toks)
    for i in range(len(toks) - _NGRAM + 1):
        if tuple(t.group(0).lower() for t in toks[i : i + _NGRAM]) in grams:
            covered[i : i + _NGRAM] = [True] * _NGRAM
    spans, i = [], 0
    while i < len(toks):
        if covered[i]:
            j = i
            while j + 1 < len(toks) and covered[j + 1]:
                j += 1
            spans.append((toks[i].start(), toks[j].end()))
            i = j + 1
        else:
            i += 1
    for start, end in reversed(spans):
        text = text[:start] + " " + text[end:]
    return text


_NEW_QUESTION = re.compile(r"\n\s*(?:Q|Question|Problem|Human|User|Instruction)\s*\d*\s*[:.]", re.IGNORECASE)
_ANSWERED = re.compile(r"(?i)\banswer\b|\\boxed|\bAnswer:")


def _cut_new_question(text: str, answered_first: bool) -> str:
    """What follows a question the model invents after its answer belongs to no item of ours.

    The trigger continuation answers first, so it is cut at the first new question; a first-pass
    output only after it has given an answer (it may restate the question before answering).
    """
    for m in _NEW_QUESTION.finditer(text):
        if text[: m.start()].strip() and (answered_first or _ANSWERED.search(text, 0, m.start())):
            return text[: m.start()]
    return text


def prepare(text: str, x: ExtractInput, kind: Kind, trigger: bool = False) -> str:
    """The text an extractor reads: cleaned, echoes and restatements removed, invented questions cut.
    `trigger`: the text is the second-pass continuation (it answers first)."""
    if kind == "code":
        return text
    text = _clean(text, kind)
    text = _remove_echoes(text, x, kind)
    text = _remove_option_lists(text, x.choices)
    # the question's own option list is not a restatement: an option named with its letter is a pick
    question = _remove_option_lists(_clean(x.question, kind), x.choices) if x.question else None
    text = _remove_restated_question(text, question)
    return _cut_new_question(text, trigger)


# --- abstentions and self-corrections -------------------------------------------------------------------

_UNSURE = (
    r"(?:unknown|unknowable|unclear|uncertain|undetermined|indeterminate|undecidable|indeterminable|"
    r"not\s+(?:known|clear|determinable|determined))"
)
_ABSTENTIONS = [
    # inability to answer the question as a whole
    r"\b(?:can\s*not|can't|cannot|could\s*not|couldn't|unable\s+to|impossible\s+to|not\s+possible\s+to|"
    r"no\s+way\s+to|not\s+able\s+to)\s+(?:be\s+)?(?:determined?|know|known|tell|told|say|said|answer(?:ed)?|"
    r"decide|decided|conclude|concluded|confirm|confirmed|verify|verified|infer|inferred|"
    r"(?:provide|give)\s+(?:an?|the|any|a\s+definitive|a\s+definite)\s+answer|choose|select|pick)\b",
    # missing information
    r"\b(?:not\s+enough|insufficient|no|lack\s+of|lacking|missing|without\s+(?:enough|sufficient|more|further|"
    r"additional))\s+(?:\w+\s+)?(?:information|info|data|details|context)\b",
    r"\b(?:does\s+not|doesn't|do\s+not|don't)\s+have\s+enough\s+(?:information|info|data|details|context)\b",
    r"\b(?:need|needs|require|requires)\s+(?:more|further|additional)\s+(?:information|info|data|details|context)\b",
    r"\b(?:more|further|additional)\s+(?:information|info|data|details|context)\s+(?:is|would\s+be)\s+"
    r"(?:needed|required)\b",
    # the answer declared unknown
    rf"\b(?:answer|result|outcome)\s+(?:is|remains|would\s+be|will\s+be)\s+(?:still\s+)?{_UNSURE}",
    rf"\b(?:answer|result)\s*[:=]\s*(?:{_UNSURE}|n/?a|none|not\s+sure|no\s+answer)\b",
    rf"\b(?:it|this|that|which)\s+(?:is|remains)\s+{_UNSURE}\s+(?:whether|if)\b",
    rf"(?:^|(?<=[.!?:;\n]))\s*[\"'(]*(?:{_UNSURE}|n/a|no\s+idea|i\s+(?:do\s+not|don't)\s+know|"
    r"it\s+depends|depends)\b(?=\s*(?:$|[.!,;:)\"'\n]|whether|if|because|since|as|from|based|"
    r"without|given|due|on))",
    # refusals
    r"\b(?:i'm|i\s+am)\s+(?:sorry|afraid)\b[^.\n]{0,40}?\b(?:can\s*not|can't|cannot|unable|not\s+able|won't)\b",
    r"\bas\s+an\s+ai\b[^.\n]{0,60}?\b(?:can\s*not|can't|cannot|unable|not\s+able|do\s+not|don't)\b",
    r"\bi\s+(?:can\s*not|can't|cannot|won't|will\s+not)\s+(?:help|assist|answer|provide|comply|complete|do\s+that|"
    r"write|give|make|diagnose|offer)\b",
    r"\b(?:i'm|i\s+am)\s+(?:not\s+able|unable|not\s+allowed|not\s+permitted|not\s+qualified|not\s+in\s+a\s+position)\s+"
    r"to\b",
    # no option, no answer, both, neither
    r"\b(?:there\s+is|there's|there\s+are)\s+no\s+(?:correct|right|valid|definitive|definite|clear|single|"
    r"possible|good)?\s*(?:answer|option|choice|solution)s?\b",
    r"\bno\s+(?:option|choice|answer)s?\s+(?:is|are)\s+(?:correct|right)\b",
    r"\bneither\s+yes\s+nor\s+no\b|\b(?:both\s+)?yes\s+and\s+no\b|\b(?:either\s+)?yes\s+or\s+no\b",
    r"\b(?:could|can|might)\s+be\s+(?:either|both)\b",
    r"\bno\s+one\s+(?:can|could)\s+(?:say|tell|know)\b|\bno\s+one\s+knows\b",
    r"(?:\bnot|n't|\bno|\bwithout|\black|\blacks|\blacking)\b[^.\n]{0,20}?\benough\s+(?:information|info|data|details|"
    r"context)\b",
    r"\b(?:the\s+)?question\s+is\s+(?:ambiguous|unclear|unanswerable|ill-posed|not\s+answerable)\b|\bunanswerable\b",
    r"\bi\s+(?:do\s+not|don't)\s+know\s+how\s+to\b",
    r"\b(?:answer|it|result|total)\s+(?:is|would\s+be|could\s+be|might\s+be)\s+(?:somewhere\s+)?between\b",
    # the kind, not a phrase list: not knowing, not being able to work it out, refusing, declaring it open
    r"(?:\b(?:i|we)\s+|^\W*|(?<=[.!?\n])\s*)(?:really\s+|honestly\s+|simply\s+|just\s+|still\s+)?(?:do\s+not|don't|"
    r"dont|did\s+not|didn't)\s+(?:really\s+)?(?:know|understand)\b",
    r"\b(?:i|we)(?:'m|\s+am|'re|\s+are)\s+(?:really\s+|quite\s+)?(?:unsure|uncertain)\b",
    r"\b(?:i|we)\s+(?:can\s*not|can't|cannot|could\s*not|couldn't|am\s+unable\s+to|'m\s+unable\s+to)\s+(?:be\s+)?"
    r"(?:sure|certain|solve|compute|calculate|figure|work\s+(?:it\s+)?out|find|determine|concatenate)\b",
    r"\b(?:impossible|not\s+possible|no\s+way|unable)\s+to\s+(?:\w+)",
    r"\b(?:can\s*not|can't|cannot|could\s*not|couldn't)\s+(?:be\s+)?(?:computed|calculated|solved|found|determined|"
    r"answered|concatenated|derived|established|worked\s+out|figured\s+out|resolved|deduced|obtained|certain|sure)\b",
    r"\bi\s+(?:refuse|decline|must\s+decline)\b|\b(?:i\s+)?apologi[sz]e\b[^.\n]{0,40}?\b(?:can\s*not|can't|cannot|"
    r"unable|not\s+able|won't|don't|do\s+not)\b|\bsorry\b[^.\n]{0,40}?\b(?:can\s*not|can't|cannot|unable|"
    r"not\s+able|won't|don't|do\s+not)\b",
    r"\b(?:could|can|might|may)\s+go\s+either\s+way\b|\b(?:both|all)\s+(?:outcomes|answers|results)\s+(?:are\s+)?"
    r"(?:possible|plausible|equally\s+likely)\b|\b(?:coin\s*toss|toss-?up|fifty-fifty)\b",
    r"\bnot\s+(?:listed|given|present|included|found|shown)\s+(?:among|in)\s+the\s+(?:choices|options|answers)\b|"
    r"\bnot\s+(?:among|in)\s+the\s+(?:choices|options|answer\s+choices)\b",
    # a statement that is only a non-answer: "Undefined.", "It's a coin toss.", "The information is missing."
    r"(?:^|(?<=[.!?:;\n]))\W*(?:(?:i\s+(?:would|'d)\s+say|i\s+think|honestly|well|sorry|hmm)[,\s]+)?"
    r"(?:(?:it|this|that|which|the\s+\w+)\s*(?:is|remains|seems|'s)\s+|it's\s+)?(?:an?\s+|really\s+|simply\s+)?"
    r"(?:unsolvable|undefined|ambiguous|inconclusive|undecided|unsure|uncertain|impossible|not\s+possible|"
    r"(?:hard|difficult|impossible)\s+to\s+(?:say|tell|know)|50\s*/\s*50|neither|nan|not\s+a\s+number|"
    r"no\s+answer|missing|not\s+(?:specified|given|stated|listed|provided|mentioned|defined|available))"
    r"(?=\s*(?:$|[.!,;:?)\n]|\s(?:in|from|among|by|here|there|for)\b))",
]
# A hedge that abstains only when nothing else is stated: "B, but I'm not sure" answers B.
_WEAK_ABSTENTIONS = [r"\bi(?:'m|\s+am)\s+not\s+(?:sure|certain|confident)\b", r"^\W*not\s+sure\b"]
# "None." answers no yes/no question and names no word; for numbers it may mean zero.
_NONE_ALONE = r"^\W*none\W*$"
_NONE_OF = r"\bnone\s+of\s+(?:the\s+(?:above|options|choices|answers|given|provided|answer\s+choices)|them|these)\b"
# every option at once is no pick: "all of the above", "any of them"
_ALL_OF = (
    r"\b(?:all|any|each|every\s+one)\s+of\s+(?:the\s+above|them|these|those|"
    r"the\s+(?:options|choices|answers))\b|"
    r"\bevery\s+(?:option|choice)(?:\s+listed)?\b"
)
_ABSTAIN_RE = re.compile("|".join(_ABSTENTIONS), re.IGNORECASE)
_ABSTAIN_NONE_RE = re.compile("|".join([*_ABSTENTIONS, _NONE_OF, _ALL_OF]), re.IGNORECASE)
_WEAK_RE = re.compile("|".join(_WEAK_ABSTENTIONS), re.IGNORECASE)
_NONE_ALONE_RE = re.compile(_NONE_ALONE, re.IGNORECASE)
_CONTRAST = re.compile(r"\b(?:but|however|though|although|yet|nevertheless|still)\b", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)|\n")

_CORRECTION = re.compile(
    r"\b(?:wait|hold\s+on)\b(?=\s*[,.!:;-]|\s+(?:a\s+)?(?:second|minute|moment|no|actually))|\bactually,|"
    r"\boops\b|\bcorrection\s*:|\bon\s+second\s+thought\b|\bi\s+made\s+(?:a|an)\s+(?:mistake|error)\b|"
    r"\bthat(?:'s|\s+is|\s+was)\s+(?:wrong|incorrect|not\s+right)\b|\bscratch\s+that\b|"
    r"\blet\s+me\s+(?:re-?\w+|double[-\s]check|check\s+again|correct|fix)\b|(?:^|(?<=[.!?,;—-]))\s*actually\b|"
    r"\bon\s+reflection\b|"
    r"\bi\s+(?:miscounted|miscalculated|misread|was\s+wrong)\b|\bno\s+wait\b|"
    r"(?<=[?])\s*no\s*[.!,]|(?:^|(?<=[.!;]))\s*no\s*[,—-]+(?=\s*[(\[$]?\s*[A-Z0-9])",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class _Abstention:
    start: int
    tail: int  # where text that may still give an answer begins (after the sentence, or at "but ...")
    phrase: str
    weak: bool = False  # a hedge: it abstains only when nothing else is stated


def _abstentions(text: str, x: ExtractInput, kind: Kind = "number") -> list[_Abstention]:
    """Explicit non-answers in `text`, in order; an option's own words ("Can't say", "None of these") are none."""
    patterns = [(_ABSTAIN_NONE_RE if x.choices else _ABSTAIN_RE, False), (_WEAK_RE, True)]
    if kind in ("yes_no", "text", "number"):  # a bare "None." as a count is rarer than as a non-answer
        patterns.append((_NONE_ALONE_RE, False))
    low = text.lower()
    options = [
        (m.start(), m.end())
        for body in _option_texts(x).values()
        for m in re.finditer(rf"(?<!\w){_words_pattern(body)}(?!\w)", low)
        if not re.search(r"\b(?:i|we)\s+(?:really\s+|honestly\s+|just\s+)?$", low[: m.start()])
    ]
    out = []
    for pattern, weak in patterns:
        for m in pattern.finditer(text):
            if any(s < m.end() and m.start() < e for s, e in options):
                continue
            if re.match(r"(?i)\W*no\b", m.group(0)) and re.match(
                r"[^.\n:;]{0,40}?\b(?:is|are|was)\s+(?:needed|required|necessary)\b", text[m.end() :]
            ):
                continue  # "No information about it is needed: no." says nothing is missing
            end = _SENTENCE_END.search(text, m.end())
            stop = end.end() if end else len(text)
            contrast = _CONTRAST.search(text, m.end(), stop)
            out.append(_Abstention(m.start(), contrast.start() if contrast else stop, m.group(0).strip(), weak))
    return sorted(out, key=lambda a: a.start)


_MAX_CORRECTIONS = 5  # a model that corrects itself more often is looping; its last few corrections decide


def _corrections(text: str) -> list[int]:
    """Where the text after each self-correction marker begins (the marker itself states nothing)."""
    return [m.end() for m in _CORRECTION.finditer(text)]


# what a correction states first, when it states no cued or last answer: "Wait, I made an error. It's B."
_FIRST_STATED = {
    "number": "trigger-number",
    "choice": "trigger-choice",
    "yes_no": "trigger-yes-no",
    "text": "trigger-word",
}


# --- numbers ------------------------------------------------------------------------------------------

# Thousands groups only when exactly three digits follow the comma, so "1, 2, 3" stays three
# numbers; a minus sign only when it is not a binary minus ("5-3" is 5 and 3, not 5 and -3).
NUMBER = r"(?:(?<![\w)\]])-)?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|(?:(?<![\w)\]])-)?\.\d+"
_NUMBER_RE = re.compile(NUMBER)


def normalize_number(text: str) -> str | None:
    """'1,234.50' -> '1234.5', '$18.00' -> '18', '-3' -> '-3'; None when there is no number."""
    m = _NUMBER_RE.search(text.replace("−", "-"))
    if not m:
        return None
    return _format_number(float(m.group(0).replace(",", "")))


def _format_number(value: float) -> str:
    if value.is_integer():
        return str(int(value))
    return f"{value:.6f}".rstrip("0").rstrip(".")


_SMALL = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_WORD_NUMBER = re.compile(
    rf"(?i)\b(?:({'|'.join(_TENS)})(?:[-\s]({'|'.join(_SMALL[1:10])}))?|({'|'.join(_SMALL)}))"
    r"\b(?:\s+(hundred|thousand)\b)?(?!\s+of\b)"
)


def _word_number(m: re.Match[str]) -> str:
    tens, unit, small, scale = m.groups()
    value = (
        (20 + 10 * _TENS.index(tens.lower()) + (_SMALL.index(unit.lower()) if unit else 0))
        if tens
        else _SMALL.index(small.lower())
    )
    if scale:
        value *= 100 if scale.lower() == "hundred" else 1000
    return str(value)


_CURRENCY = r"[$€£¥₹]"
_OPERAND = re.compile(rf"\s*((?:\(\s*)*){_CURRENCY}?\s*({NUMBER})(\s*%)?")
_CLOSE = re.compile(r"\s*\)")
_OPERATOR = re.compile(r"\s*([-+*/×÷·=]|x(?=\s*[$€£(]?\s*\d))")
_UNIT = re.compile(r"(?:\s+[^\W\d_]+\.?){1,2}(?=\s*(?:[-+*/×÷·=]|x\s*\d))")
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def _arith(expr: str) -> float | None:
    """Value of + - * / over numbers and parentheses; None for anything else."""

    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            return -walk(node.operand) if isinstance(node.op, ast.USub) else walk(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](walk(node.left), walk(node.right))
        raise ValueError(node)

    try:
        return walk(ast.parse(expr, mode="eval"))
    except (SyntaxError, ValueError, ZeroDivisionError, RecursionError, OverflowError):
        return None


def _expression(text: str, pos: int) -> tuple[str, int] | None:
    """The value of the arithmetic written from `pos` on, and where it ends.

    "9 * 60 = 540 meters" is worth 540 (after '=' the last side counts), "9 * 60" is worth 540,
    "25% of 80" is worth 20. A derivation goes on to its end: "16 - 3 - 4 = 9 eggs, 9 * 2 = $18"
    and "60% of $5 = $3, so 8 * $5 + 8 * $3 = $64" are worth 18 and 64 (a next step that starts
    from the result, or one calculation joined to another by ',', 'so', 'then', 'and').
    """
    got = _calculation(text, pos)
    while got:
        value, end, calculated = got
        step = re.match(r"(?:\s+[^\W\d_]+)?\s*(?:,|;|\n|\.\s|\band\b|\bso\b|\bthen\b|→|->)\s*(?:so\s+)?", text[end:])
        nxt = _calculation(text, end + step.end()) if step else None
        if not nxt or nxt[0] == value:
            return value, end
        continues = re.match(rf"\(?\s*{_CURRENCY}?\s*{re.escape(value)}(?![\d.,]\d)", text[end + step.end() :])
        joined = calculated and nxt[2] and "." not in step.group(0)  # two calculations in one sentence
        if not (continues or joined):
            return value, end
        got = nxt
    return None


def _calculation(text: str, pos: int) -> tuple[str, int, bool] | None:
    """(value, end, whether anything was calculated) of one chain of operands, operators and '='."""
    tokens: list[str] = []
    depth, i, end = 0, pos, pos
    while m := _OPERAND.match(text, i):
        opens = m.group(1).count("(")
        tokens += ["("] * opens + [f"({m.group(2).replace(',', '')})"]
        value_at = len(tokens) - 1
        depth += opens
        i = m.end()
        while depth and (close := _CLOSE.match(text, i)):
            tokens.append(")")
            depth, i = depth - 1, close.end()
        end = i
        of = re.match(r"\s+of\s+(?=[$€£(]?\s*\d)", text[i:])
        if of and (m.group(3) or "/" in tokens):  # "25% of 80", "1/4 of 20"; "60%" alone is 60
            if m.group(3):
                tokens[value_at] = f"({tokens[value_at]}/100)"
            tokens[:] = ["(", *tokens, ")", "*"]
            i += of.end()
            continue
        unit = _UNIT.match(text, i)
        op = _OPERATOR.match(text, unit.end() if unit else i)
        if not op:
            break
        tokens.append({"×": "*", "·": "*", "x": "*", "÷": "/"}.get(op.group(1), op.group(1)))
        i = op.end()
    while tokens and tokens[-1] in ("+", "-", "*", "/", "=", "("):
        tokens.pop()
    if not tokens:
        return None
    tokens += [")"] * (tokens.count("(") - tokens.count(")"))
    calculated = any(t in ("+", "-", "*", "/", "=") for t in tokens)
    for side in reversed(" ".join(tokens).split("=")):
        value = _arith(side.strip()) if side.strip() else None
        if value is not None:
            return _format_number(round(value, 6)), end, calculated
    return None


_REJECT_NUMBER = re.compile(r"(?:\bnot|n't|\binstead\s+of|\brather\s+than)\s*[$€£]?\s*$", re.IGNORECASE)


def _number_at(text: str, m: re.Match[str]) -> Found:
    """The answer a number match starts, or a hedge between two numbers ('12 or 14')."""
    got = _expression(text, m.start())
    if got is None:
        return None
    value, end = got
    alt = re.match(
        rf"(?:\s+[^\W\d_]+){{0,2}}\s*(?:,\s*)?\bor\b\s*(?:maybe\s+|perhaps\s+|possibly\s+)?{_CURRENCY}?\s*"
        rf"({NUMBER})",
        text[end:],
    )
    if alt and normalize_number(alt.group(1)) != value:
        return Abstain(text[m.start() : end + alt.end()].strip())
    return value


_NUMBER_START = re.compile(rf"{_CURRENCY}?\s*(?:{NUMBER})|(?:\(\s*)+(?={_CURRENCY}?\s*\d)")


def _first_number(text: str) -> Found:
    lead = re.match(r"[\s\"'(\[{:=,.\-]*", text)
    if lead and (w := _WORD_NUMBER.match(text, lead.end())):
        return _word_number(w)
    for m in _NUMBER_START.finditer(text):
        if not _REJECT_NUMBER.search(text[max(0, m.start() - 20) : m.start()]):
            return _number_at(text, m)
    return None


def trigger_number(text: str, x: ExtractInput) -> Found:
    """The first number the trigger continuation states, worth its expression ('9 * 60 = 540' -> 540)."""
    return _first_number(text)


_NUM_CUE = re.compile(
    r"(?i:\b(?:final\s+answer|answer|result|total|sum|solution)\b\s*(?:is|was|would\s+be|will\s+be|should\s+be|"
    r"equals|comes\s+to|=|:|—)\s*:?)[\s\"'\[{:]*(?:\\boxed\s*\{)?[\s\"'\[{]*"
    r"(?i:(?:approximately|about|around|roughly|exactly|probably|likely|just|only|simply)\s+)?"
)


_NOT_THIS_BUT = re.compile(
    rf"(?i:not|n't)\s+{_CURRENCY}?\s*(?:{NUMBER})(?:\s+[^\W\d_]+)?\s*[,;:]?\s*(?i:but\s+)?"
    r"(?i:(?:it\s+is|it's|rather|instead)\s+)?"
)


def answer_is_number(text: str, x: ExtractInput) -> Found:
    """The number after the last answer cue ("The answer is $1,234", "Total = 9 * 60 = 540")."""
    for cue in reversed(list(_NUM_CUE.finditer(text))):
        at = cue.end()
        if rejected := _NOT_THIS_BUT.match(text, at):  # "the answer is not 16; it is 18"
            at = rejected.end()
        if w := _WORD_NUMBER.match(text, at):
            return _word_number(w)
        m = _NUMBER_START.match(text, at)
        if m:
            found = _number_at(text, m)
            if found is not None:
                return found
    return None


def _boxed(text: str) -> list[str]:
    return [text[m.end() : _brace_end(text, m.end() - 1) - 1] for m in re.finditer(r"\\boxed\s*\{", text)]


def boxed_number(text: str, x: ExtractInput) -> Found:
    for content in reversed(_boxed(text)):
        found = _first_number(content.split("=")[-1] if "=" in content else content)
        if found is not None:
            return found
    return None


def last_number(text: str, x: ExtractInput) -> Found:
    """The last number not rejected ('not 18'); a hedge between the last two ('12 or 14') abstains."""
    matches = [
        m for m in _NUMBER_RE.finditer(text) if not _REJECT_NUMBER.search(text[max(0, m.start() - 20) : m.start()])
    ]
    if not matches:
        return None
    last = matches[-1]
    if len(matches) > 1:
        prev = matches[-2]
        if re.fullmatch(
            rf"(?:\s+[^\W\d_]+){{0,2}}\s*,?\s*\bor\b\s*(?:maybe\s+|perhaps\s+|possibly\s+)?{_CURRENCY}?\s*",
            text[prev.end() : last.start()],
        ) and normalize_number(prev.group(0)) != normalize_number(last.group(0)):
            return Abstain(text[prev.start() : last.end()])
    return normalize_number(last.group(0))


# --- letter choices --------------------------------------------------------------------------------------


def _labels(x: ExtractInput) -> str:
    return "".join(x.choices) or "ABCDE"


def _strip_option(option: str) -> str:
    return option.strip().rstrip(".").strip()


def _option_texts(x: ExtractInput) -> dict[str, str]:
    """Label -> option text cleaned like the texts it is searched in, lowercased, without a final period."""
    return {label: body for label, text in x.choices.items() if (body := _strip_option(_clean(text, "choice")).lower())}


# A letter after these words names a thing, not an option: "vitamin C", "type A", "point B".
_NAMING_WORDS = (
    r"vitamin|type|hepatitis|plan|grade|class|category|section|group|part|point|player|person|team|"
    r"blood|model|variable|set|matrix|vector|angle|triangle|line|segment|city|country|company|factor|"
    r"gene|allele|strain|drug|compound|element|box|bag|room|building|column|row|statement|step|case|"
    r"figure|table|exhibit|appendix|chapter|article|schedule|form|size|letter\s+grade"
)
_REJECT_BEFORE = re.compile(
    r"(?:\bnot|n't|\bnever|\bexcept|\bexcluding|\beliminated?|\beliminating|\bruled?\s+out|\bruling\s+out|"
    r"\brather\s+than|\binstead\s+of|\bother\s+than|\bunlike|\bnor|\bneither|\bcannot|\bagainst|\banything\s+but|"
    r"\ball\s+but|\bbut\s+not)\s+(?:(?:be|pick|choose|select|go\s+with|say|mark)\s+)?(?:(?:at|in|on|from|for)\s+)?"
    r"(?:(?:the|a|an)\s+)?(?:(?:options?|choices?|answer|letters?)\s+)?"
    r"(?:\(?[A-Z]\)?\s*(?:,|\band\b|\bor\b|\bnor\b)\s*)*[(\"']?$",
    re.IGNORECASE,
)  # "rule out (A) and (B)"
_REJECT_AFTER = (
    r"(?:(?:\s+(?:is|are|was|seems|would\s+be|can\s+be|could\s+be|must\s+be))?\s*(?:\w+\s+)?"
    r"(?:incorrect|wrong|false|unlikely|implausible|eliminated|ruled\s+out|excluded|(?:a\s+)?trap|"
    r"(?:a\s+)?distractor|too\s+(?:small|large|big|low|high|few|many)|"
    r"not\s+(?:correct|right|the\s+(?:answer|correct|right)|true|possible|likely|valid|it))\b"
    r"|\s*\?\s*(?:no\b(?!\s+(?:doubt|question))|(?:that|this|it)(?:'s|\s+is)?\s*"
    r"(?:can't|cannot|can\s*not|"
    r"couldn't|isn't|is\s+not)\s+(?:be\s+)?(?:right|correct|it|true))"
    r"|[^.;\n]{0,15}?\bbut\s+(?:that|this|it|they)(?:'s|\s+is|\s+are|\s+was|\s+were)?\s*(?:not|n't|isn't|"
    r"aren't|wasn't)\b)"
)


def _rejected(text: str, start: int, end: int, option: str | None, options: dict[str, str] | None = None) -> bool:
    """The option at text[start:end] is one the model rules out ('not C', '(A) bank is wrong').

    `options` (label -> cleaned lowercase text, `_option_texts`): an option's text written right after the
    letter is what the model labels with it, never a verdict on it: "(C) False, False" does not rule out C,
    whichever option "False, False" is.
    """
    before = text[max(0, start - 30 - (len(option) if option else 0)) : start]
    if _REJECT_BEFORE.search(before):
        return True
    if option and re.search(
        rf"(?i:\b(?:not|n't|never|except|rather\s+than|instead\s+of))\s+(?:(?:the|a|an)\s+)?"
        rf"(?i:{_words_pattern(_strip_option(_clean(option, 'choice')))})\s*\(?$",
        before,
    ):
        return True  # "not the library (B)"
    after = text[end : end + 120]
    bodies = {_strip_option(_clean(option, "choice")).lower()} if option else set()
    bodies |= set((options or {}).values())
    # step over an option's text first (the longest that fits): "(B) False, False" does not reject B
    own = [
        m.end()
        for body in bodies
        if body and (m := re.match(rf"\)?\s*[.:)]?\s*(?i:{_words_pattern(body)})(?!\w)", after))
    ]
    after = after[max(own) :] if own else after
    return bool(re.match(rf"\)?[\s,:(\-]*{_REJECT_AFTER}", after, re.IGNORECASE))


_NOT_A_LABEL = r"(?<![\w'°])(?<!\w\.)(?<!\w\()"  # "°C", "U.S.A.", "P(A" hold letters that are no option
_LABEL_END = r"(?![\w'+#])(?!\.[A-Za-z])"  # "C++", "C#", "A.D."


_CUE_WORDS = (
    r"Answer|Option|Choice|Letter|So|Thus|Therefore|Hence|Pick|Choose|Select|Is|Be|Correct|Final|Maybe|"
    r"Probably|Definitely|Clearly|Not|Only|Either|Or|And|Both|Then|Now|Obviously|Hmm|Ok|Okay|Yes|No"
)


def _names_a_thing(text: str, start: int, x: ExtractInput | None = None) -> bool:
    """A letter after 'vitamin', 'type', or a capitalized word ('Stock B', 'Plan A') names a thing, not an option;
    a letter right after an option's text labels it ('False, False (C)')."""
    before = text[max(0, start - 20) : start]
    if x and any(
        re.search(rf"(?<!\w){_words_pattern(body)}[\s,:\-—]*$", text[:start].lower())
        for body in _option_texts(x).values()
    ):
        return False
    if re.search(
        rf"(?i:\b(?:{_NAMING_WORDS}|stock|event|candidate|site|region|species|patient|subject|sample|"
        r"country|store|brand|product|machine|project|route|plan))\s*$",
        before,
    ):
        return True
    m = re.search(r"\b([A-Z][a-z]+)\s+$", before)
    return bool(m and not re.fullmatch(_CUE_WORDS, m.group(1)))


def _letter_hits(text: str, x: ExtractInput) -> list[tuple[int, int, str]]:
    """(start, end, label) of every letter written as a choice and not ruled out."""
    labels = re.escape(_labels(x))
    after_text = "|".join(_words_pattern(t) for t in _option_texts(x).values())
    pattern = re.compile(
        rf"(?<![\w\\])\(\s*([{labels}])\s*\)"
        rf"|{_NOT_A_LABEL}([{labels}]){_LABEL_END}(?=\s*[).:,;]|\s*$|\s*\n|\s*\}}|\s+(?:is|was|because|since|as)\b"
        rf"|\s*[-—]\s)"
        rf"|{_NOT_A_LABEL}([{labels}]){_LABEL_END}(?!\s+[a-z])"
        + (rf"|{_NOT_A_LABEL}([{labels}])\s+(?=(?i:{after_text})(?!\w))" if after_text else "")
    )
    hits = []
    for m in pattern.finditer(text):
        label = next(g for g in m.groups() if g)
        if _names_a_thing(text, m.start(), x):
            continue
        if not _rejected(text, m.start(), m.end(), x.choices.get(label), _option_texts(x)):
            hits.append((m.start(), m.end(), label))
    return hits


def _option_hits(text: str, x: ExtractInput, spans_out: list[tuple[int, int]] | None = None) -> list[tuple[int, str]]:
    """(position, label) of option texts written out and not ruled out; a longer option hides those inside it.
    `spans_out`, when given, receives the (start, end) of every hit kept."""
    low = text.lower()
    spans = []
    for label, body in _option_texts(x).items():
        plural = "(?:e?s)?" if re.search(r"[a-z]$", body) else ""  # "banks" names the option "bank"
        for m in re.finditer(rf"(?<!\w){_words_pattern(body)}{plural}(?!\w)", low):
            if not _rejected(low, m.start(), m.end(), None):
                spans.append((m.start(), m.end(), label))
    kept = [
        (s, e, lab) for s, e, lab in spans if not any(s2 <= s and e <= e2 and (s2, e2) != (s, e) for s2, e2, _ in spans)
    ]
    if spans_out is not None:
        spans_out.extend((s, e) for s, e, _ in kept)
    return sorted((s, lab) for s, _, lab in kept)


def _ruled_out(text: str, x: ExtractInput) -> set[str]:
    """Labels of the options `text` rules out, by letter or by text."""
    labels = re.escape(_labels(x))
    out = {
        m.group(1)
        for m in re.finditer(rf"{_NOT_A_LABEL}\(?([{labels}])\)?{_LABEL_END}", text)
        if _rejected(text, m.start(), m.end(), x.choices.get(m.group(1)), _option_texts(x))
    }
    low = text.lower()
    for label, body in _option_texts(x).items():
        if any(
            _rejected(low, m.start(), m.end(), None) for m in re.finditer(rf"(?<!\w){_words_pattern(body)}(?!\w)", low)
        ):
            out.add(label)
    return out


def _hedges(text: str, x: ExtractInput) -> list[tuple[int, int]]:
    """Spans naming two options as alternatives: 'A or C', 'either (B) or (D)', 'B/C', 'A and C are both correct'."""
    labels = re.escape(_labels(x))
    letter = rf"{_NOT_A_LABEL}\(?([{labels}])\)?"
    pattern = re.compile(
        rf"(?:\b[Bb]oth\s+(?:options?\s+)?)?{letter}\s*(?:,\s*)?(?:\bor\b|/|\band\b(?=[^.\n]{{0,40}}?\b(?:both\s+)?"
        rf"(?:correct|right|true|valid|possible|plausible|likely|good|reasonable)\b)"
        r"|(?<=\w)\s*,?\s*(?i:unless|depending\s+on|if\s+not|otherwise)\b[^.\n]{0,60}?)"
        rf"\s*(?:options?\s+|choices?\s+)?\(?([{labels}])\)?{_LABEL_END}"
        rf"|\b[Bb]etween\s+(?:options?\s+|choices?\s+)?{letter}\s*and\s*\(?([{labels}])\)?{_LABEL_END}"
    )
    return [
        (m.start(), m.end())
        for m in pattern.finditer(text)
        if (m.group(1) or m.group(3)) != (m.group(2) or m.group(4)) and not _names_a_thing(text, m.start())
    ]


def _label_form(text: str, start: int, end: int, x: ExtractInput) -> bool:
    """The letter at text[start:end] is written as a label: '(C)', 'C.', 'C)', 'C:', a letter ending its line
    or a box, a letter followed by an option's text ('C False, False', from '**C** False, False'), or a
    letter after 'Answer:' / 'the answer is' ('Option A is about ...' is not one)."""
    if text[start] == "(" or re.match(r"\s*(?:[).:}]|$|\n)", text[end:]):
        return True
    if any(re.match(rf"\s*(?i:{_words_pattern(body)})(?!\w)", text[end:]) for body in _option_texts(x).values()):
        return True
    return bool(re.search(r"(?i:\banswer\s*(?:is|:|=|-)?\s*:?)\s*$", text[:start]))


def _text_or_letter(text: str, start: int, end: int, label: str, x: ExtractInput) -> str | None:
    """Another option's text offered as an alternative to the letter at text[start:end] ('False, False or (C)',
    '(C) or False, False'): the hedge's words, else None."""
    for other, body in _option_texts(x).items():
        if other == label:
            continue
        words = _words_pattern(body)
        before = re.search(rf"(?i:(?<!\w){words})\s*,?\s*(?:\bor\b|/)\s*\(?$", text[: start + 1])
        after = re.match(rf"\)?\s*,?\s*(?:\bor\b|/)\s*(?i:{words})(?!\w)", text[end:])
        if before:
            return text[before.start() : end]
        if after:
            return text[start : end + after.end()]
    return None


def _numeric_options(x: ExtractInput) -> dict[str, str]:
    """Label -> normalized number when every option is a number ('4', '$65', '67.40'), else {}."""
    values = {
        label: normalize_number(body)
        for label, body in _option_texts(x).items()
        if re.fullmatch(rf"-?\s*{_CURRENCY}?\s*\d[\d,]*(?:\.\d+)?\s*%?", body)
    }
    return values if values and len(values) == len(x.choices) else {}


def _number_option(text: str, numeric: dict[str, str]) -> str | None:
    """The option whose value the first stated number or expression has; numbers under a root or a power, or glued
    to a letter ('√2', 'x2'), are operands of something else."""
    pos = 0
    while m := _NUMBER_START.search(text, pos):
        if not m.group(0)[0].isspace() and re.search(r"[√^\w]$", text[max(0, m.start() - 1) : m.start()]):
            pos = m.end()
            continue
        got = _expression(text, m.start())
        if got is None:
            pos = m.end()
            continue
        value, end = got
        label = next((lab for lab, v in numeric.items() if v == value), None)
        if label:
            return label
        pos = max(end, m.end())
    return None


def trigger_choice(text: str, x: ExtractInput) -> Found:
    """The option the trigger continuation names; two at once (a hedge, 'A or C') abstain.

    A letter written as a label is the explicit answer and beats any option text, wherever that text stands and
    whichever option it is ("(C) False, False" and "False, False (C)" are C even when "False, False" is B's
    text); the first such letter counts. Without one, the first option named, by a bare letter or by its text.
    """
    spans: list[tuple[int, int]] = []
    options = _option_hits(text, x, spans)
    # a letter inside an option's own text ("Both A and C") is that text, not a label
    letters = [h for h in _letter_hits(text, x) if not any(s <= h[0] and h[1] <= e for s, e in spans)]
    labelled = [h for h in letters if _label_form(text, h[0], h[1], x)]
    if labelled:
        letters, options = labelled, []
    elif (numeric := _numeric_options(x)) and _NUMBER_START.search(text):
        # number options: a stated expression is worth its result ("4 / 2 = 2" is 2, not 4), matched by value
        found = _number_option(text, numeric)
        if found is not None:
            return found
        options = []
    if lower := re.match(rf"[\s:\"'*]*\(\s*([{re.escape(_labels(x).lower())}])\s*\)", text):
        letters, options = [(lower.start(1) - 1, lower.end(), lower.group(1).upper())], []  # "(b)" right away
    first = min([s for s, _, _ in letters[:1]] + [s for s, _ in options[:1]], default=None)
    hedge = next(iter(_hedges(text, x)), None)
    if hedge and (first is None or first >= hedge[0] - 1 and first <= hedge[1]):
        return Abstain(text[hedge[0] : hedge[1]])
    if first is None:
        return None
    if not letters:  # "a department store or a mall": two option texts as alternatives
        ordered = sorted(spans)
        for (s1, e1), (s2, e2) in zip(ordered, ordered[1:], strict=False):
            alternatives = r"\s*,?\s*(?:or|/)\s*(?:maybe\s+|perhaps\s+|possibly\s+)?(?:(?:an?|the)\s+)?"
            if s1 == first and re.fullmatch(alternatives, text[e1:s2]):
                return Abstain(text[s1:e2])
    if letters and letters[0][0] == first:
        start, end, label = letters[0]
        hedge_words = _text_or_letter(text, start, end, label, x)
        return Abstain(hedge_words) if hedge_words else label
    return options[0][1]


def _choice_cue(x: ExtractInput) -> re.Pattern[str]:
    labels = re.escape(_labels(x))
    after_text = "|".join(_words_pattern(t) for t in _option_texts(x).values())
    cue = (
        r"(?:\banswer\b|\bcorrect\s+(?:option|choice|letter|one|response)\b|\bright\s+(?:option|choice)\b|"
        r"\bbest\s+(?:option|choice|answer)\b|\b(?:pick|choose|select|go\s+with|going\s+with|opt\s+for)\b|→|=>|->)"
    )
    return re.compile(
        rf"(?i:{cue}\s*(?:is|would\s+be|will\s+be|should\s+be|must\s+be|=|:|-)?\s*:?\s*"
        r"(?:probably|likely|most\s+likely|definitely|clearly|therefore|thus)?\s*,?\s*"
        r"(?:the\s+)?(?:option|choice|letter)?\s*)"
        + (rf"(?:(?i:{after_text})\s*[,:\-—]?\s*(?=\())?" if after_text else "")  # "answer is False, False (C)"
        + rf"(?:\\boxed\s*\{{)?[\s\"'\[{{]*(?:\(\s*([{labels}{labels.lower()}])\s*\)|([{labels}]){_LABEL_END}"
        r"(?!(?<=A)\s+[a-z]))"
    )  # "the answer is A good ..." is an article


def answer_is_choice(text: str, x: ExtractInput) -> Found:
    """The option after the last answer cue ('answer is (C)', 'Answer: D', 'I would pick B', 'B is correct')."""
    labels = re.escape(_labels(x))
    hits: list[tuple[int, int, str]] = []
    for m in _choice_cue(x).finditer(text):
        label = (m.group(1) or m.group(2)).upper()
        hits.append((m.start(), m.end(), label))
    after_text = "|".join(_words_pattern(t) for t in _option_texts(x).values())
    option_body = rf"(?:\s*[.:]?\s*(?i:{after_text}))?" if after_text else ""
    reverse = re.compile(
        rf"{_NOT_A_LABEL}\(?([{labels}])\)?{option_body}\s*(?i:is|would\s+be|seems)\s+(?i:the\s+)?"
        r"(?i:correct|right|best|most\s+likely|most\s+appropriate|most\s+accurate)\b"
    )
    hits += [(m.start(), m.end(), m.group(1)) for m in reverse.finditer(text)]
    for start, end, label in sorted(hits, reverse=True):
        letter_at = start + max(text[start:end].rfind(label), 0)
        if _names_a_thing(text, letter_at, x) or _rejected(
            text, letter_at, end, x.choices.get(label), _option_texts(x)
        ):
            continue
        hedge = next((h for h in _hedges(text, x) if h[0] <= letter_at < h[1]), None)
        return Abstain(text[hedge[0] : hedge[1]]) if hedge else label
    return None


def boxed_choice(text: str, x: ExtractInput) -> Found:
    for content in reversed(_boxed(text)):
        found = trigger_choice(content, x)
        if found is not None:
            return found
    return None


def paren_choice(text: str, x: ExtractInput) -> Found:
    """The one option written as '(X)'; several different ones are a list, not an answer. 'P(A)' is not one."""
    labels = _labels(x)
    hits = {label for s, e, label in _letter_hits(text, x) if text[s] == "(" and label in labels}
    return hits.pop() if len(hits) == 1 else None


def line_choice(text: str, x: ExtractInput) -> Found:
    """The one option written alone on a line: 'B', '(B)', 'B.', or 'B. library' with an option's text (the letter
    labels the line even when the text is another option's: 'C. False, False' is C)."""
    labels = re.escape(_labels(x))
    options = _option_texts(x)
    hits = set()
    for m in re.finditer(rf"(?m)^[ \t]*[-•]?[ \t]*\(?([{labels}])\)?[.):]?[ \t]*(.*?)[ \t.!]*$", text):
        label, rest = m.group(1), m.group(2).strip().lower()
        if rest and not any(
            rest.startswith(body) and re.fullmatch(r"[\s.,;:!)]*", rest[len(body) :]) for body in options.values()
        ):
            continue
        if not _rejected(text, m.start(1), m.end(), x.choices.get(label), options):
            hits.add(label)
    return hits.pop() if len(hits) == 1 else None


def option_text(text: str, x: ExtractInput) -> Found:
    """The label of the only option whose text the answer names (not inside a restated question, not ruled out);
    when every option is a number (AQuA), the option equal to the last number written."""
    hits = _option_hits(text, x)
    labels = {label for _, label in hits}
    if len(labels) == 1:
        return labels.pop()
    options = _option_texts(x)
    if labels and all(re.fullmatch(r"-?\s*\d[\d,]*(?:\.\d+)?\s*%?", body) for body in options.values()):
        last = last_number(text, x)
        matching = [
            label for label, body in options.items() if isinstance(last, str) and normalize_number(body) == last
        ]
        return matching[0] if len(matching) == 1 else None
    return None


# --- yes / no ----------------------------------------------------------------------------------------------

# "no" as an answer, not as a determiner: "No.", "No, ...", "no it is not", but not "no information".
_YES_NO = re.compile(
    r"(?<![\w'-])(yes|no)(?![\w'-])(?=\s*(?:$|[.,!;:?)\]\"'—-]|\n|\s+(?:it|he|she|they|this|that|there|i|we|you|the|"
    r"because|since|as|not|but|and|so|indeed|definitely|absolutely|certainly)\b))",
    re.IGNORECASE,
)


_YES_NO_LEAD = re.compile(
    r"[\s\"'(:]*(?:(true|correct|yep|yeah|yup)|false|incorrect|nope|nah|(?:absolutely|certainly|definitely|of\s+course|"
    r"surely)\s+not|not\s+at\s+all|not\s+really)(?=\s*(?:$|[.!,;:)\"'\n]))",
    re.IGNORECASE,
)


def trigger_yes_no(text: str, x: ExtractInput) -> Found:
    """The first yes or no; both offered together ('Yes, no, maybe', 'yes or no') abstain. A boxed answer, or a
    continuation that opens with 'True.' / 'Nope.' / 'Of course not.', is read as yes or no."""
    if (boxed := boxed_yes_no(text, x)) is not None:
        return boxed
    if lead := _YES_NO_LEAD.match(text):
        return "yes" if lead.group(1) else "no"
    m = _YES_NO.search(text)
    if not m:
        return None
    if both := re.match(r"\s*(?:,|/|\bor\b)\s*(yes|no|maybe|perhaps)\b", text[m.end() :], re.IGNORECASE):
        if both.group(1).lower() != m.group(1).lower():
            return Abstain(text[m.start() : m.end() + both.end()])
    return m.group(1).lower()


_YES_NO_CUE = re.compile(
    r"(?i)\b(?:final\s+)?answer\b\s*(?:is|would\s+be|will\s+be|should\s+be|=|:|-)?\s*:?\s*"
    r"(?:probably|likely|most\s+likely|definitely|clearly|simply|certainly|a\s+(?:clear|definite|resounding|firm))?"
    r"\s*,?[\s\"'(\[{]*(?:\\boxed\s*\{)?[\s\"'(\[{]*(yes|no)(?![\w'-])"
)


def answer_is_yes_no(text: str, x: ExtractInput) -> Found:
    hits = _YES_NO_CUE.findall(text)
    return hits[-1].lower() if hits else None


def boxed_yes_no(text: str, x: ExtractInput) -> Found:
    for content in reversed(_boxed(text)):
        if m := _YES_NO.search(content.strip() + "."):
            return m.group(1).lower()
    return None


def first_yes_no(text: str, x: ExtractInput) -> Found:
    m = _YES_NO.search(text)
    return m.group(1).lower() if m else None


def last_yes_no(text: str, x: ExtractInput) -> Found:
    hits = _YES_NO.findall(text)
    return hits[-1].lower() if hits else None


# --- free words (last-letter concatenation) --------------------------------------------------------------

_LETTER = r"[^\W\d_]"
_STOPWORDS = frozenset(
    "the a an is are was were of and or to in on it its that this these those so thus therefore hence we you i "
    "answer final result word words string letter letters last first second third fourth each every name names "
    "concatenation concatenate concatenated concatenating combined combining combine together form forms formed "
    "gives give giving get gets we're which be will would then taking take from with by as our your is: spell "
    "spells spelled spelling makes make made yields yield produce produces sequence output ends end ending "
    "following correct simply just here there new becomes become boxed text not but probably likely definitely "
    "clearly".split()
)
_QUOTED = re.compile(r"\"([^\"\n]{1,60})\"|(?<![\w'])'([^'\n]{1,60})'(?![\w'])")
_LETTER_RUN = re.compile(rf"(?<![\w'])({_LETTER})(?:(?:\s*[,+\-–·]\s*|\s+)(?:and\s+)?{_LETTER}(?![\w'])){{1,}}")


def _names(x: ExtractInput) -> set[str]:
    return {t.lower() for t in re.findall(rf"{_LETTER}+", unicodedata.normalize("NFC", x.question or ""))}


def _candidate(span: str, x: ExtractInput, allow_single: bool) -> str | None:
    """A quoted span or a word as the answer: one word, or single letters written apart ('y a j o')."""
    words = re.findall(rf"{_LETTER}+", span)
    if not words:
        return None
    if len(words) == 1:
        w = words[0].lower()
        if (len(w) == 1 and not allow_single) or w in _STOPWORDS or (len(w) > 1 and w in _names(x)):
            return None
        return w
    if all(len(w) == 1 for w in words) and re.fullmatch(
        rf"[\s,+\-–·.]*(?:{_LETTER}[\s,+\-–·]*(?:and\s+)?)+[.!]?\s*", span
    ):
        return "".join(words).lower()
    return None


def _quoted(text: str, x: ExtractInput) -> Found:
    """The last quoted answer that is not a name echoed from the question; a whole word beats a single letter;
    two different quoted words offered as alternatives ('"yajo" or "yaio"') abstain."""
    spans = [
        (m, c)
        for m in _QUOTED.finditer(text)
        if (c := _candidate(m.group(1) or m.group(2), x, True))
        and not re.search(r"(?i:\bnot|n't|\binstead\s+of|\brather\s+than)\s*$", text[: m.start()])
    ]
    for (m1, c1), (m2, c2) in zip(spans, spans[1:], strict=False):
        if c1 != c2 and re.fullmatch(r"\s*,?\s*or\s*", text[m1.end() : m2.start()]):
            return Abstain(text[m1.start() : m2.end()])
    found = [c for _, c in spans]
    longer = [c for c in found if len(c) > 1]
    return (longer or found)[-1] if found else None


_WORD_CUE = re.compile(
    r"(?i)(?:\b(?:final\s+)?(?:answer|result|concatenation|resulting\s+(?:string|word)|word|string|output)\s*"
    r"(?:is|would\s+be|will\s+be|=|:|-)\s*:?"
    r"|\bconcatenat\w*(?:\s+(?:them|these|those|all|the\s+(?:last\s+)?letters|string|word|letters|result))?\s*"
    r"(?:is|are|=|:|gives|yields)\s*:?"
    r"|\b(?:gives(?:\s+us)?|we\s+get|you\s+get|spells?|forms?|yields?|makes?|results\s+in|becomes)\s*:?"
    r"|(?:→|->|=>|=))\s*(?:(?:the|a|word|string|letters)\s+){0,2}"
)


def _run_or_word(text: str, pos: int, x: ExtractInput, allow_single: bool) -> str | None:
    run = _LETTER_RUN.match(text, pos)
    if run and (c := _candidate(run.group(0), x, False)):
        return c
    quoted = _QUOTED.match(text, pos)
    if quoted:
        return _candidate(quoted.group(1) or quoted.group(2), x, allow_single)
    word = re.match(rf"{_LETTER}+(?=[\s.,!;:)\"']|$)", text[pos:])
    return _candidate(word.group(0), x, allow_single) if word else None


def answer_is_word(text: str, x: ExtractInput) -> Found:
    for cue in reversed(list(_WORD_CUE.finditer(text))):
        if found := _run_or_word(text, cue.end(), x, allow_single=False):
            return found
    return None


def quoted_word(text: str, x: ExtractInput) -> Found:
    found = _quoted(text, x)
    return found if isinstance(found, Abstain) or (found and len(found) > 1) else None


def boxed_word(text: str, x: ExtractInput) -> Found:
    for content in reversed(_boxed(text)):
        if found := _candidate(content, x, True):
            return found
    return None


def _word_tokens(text: str) -> list[re.Match[str]]:
    return list(re.finditer(rf"{_LETTER}+", text))


def trigger_word(text: str, x: ExtractInput) -> Found:
    """A boxed or quoted answer in the continuation, else the word after a cue, else its first word (not filler)."""
    if found := boxed_word(text, x) or _quoted(text, x):
        return found
    if found := answer_is_word(text, x):
        return found
    for m in _word_tokens(text):
        if found := _run_or_word(text, m.start(), x, allow_single=bool(re.match(r"\s*(?:[.!,;]|$)", text[m.end() :]))):
            return found
    return None


def last_word(text: str, x: ExtractInput) -> Found:
    """The last word that is not filler, a name from the question or a lone letter (or letters written apart)."""
    tokens = _word_tokens(text)
    for m in reversed(tokens):
        run_start = m.start()
        while True:  # walk back to the start of a run of single letters
            prev = [t for t in tokens if t.end() <= run_start]
            if (
                len(m.group(0)) == 1
                and prev
                and len(prev[-1].group(0)) == 1
                and re.fullmatch(r"(?:\s*[,+\-–·]\s*|\s+)(?:and\s+)?", text[prev[-1].end() : run_start])
            ):
                run_start = prev[-1].start()
            else:
                break
        if found := _run_or_word(text, run_start, x, allow_single=False):
            return found
    return None


# --- code ------------------------------------------------------------------------------------------------

_FENCE = re.compile(r"```[ \t]*(?:python|py|python3)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL | re.IGNORECASE)


def code_block(text: str, x: ExtractInput) -> Found:
    """The fenced block that defines the entry point, else the first fenced block."""
    blocks = [b for b in _FENCE.findall(text) if b.strip()]
    if not blocks:
        return None
    if x.entry_point:
        for b in blocks:
            if re.search(rf"def\s+{re.escape(x.entry_point)}\s*\(", b):
                return b
    return blocks[0]


def code_raw(text: str, x: ExtractInput) -> Found:
    """Unfenced code: the answer itself when it looks like Python (a def, a return, or indented lines)."""
    if re.search(r"(?m)^\s*(def |return\b|for |if |import |from )", text):
        return text
    return None


# --- registry and the chain ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Extractor:
    find: Callable[[str, ExtractInput], Found]
    kind: Kind
    reads: Literal["trigger", "answer"]  # the second-pass continuation, or the first-pass answer
    cued: bool  # the text marks the value as the answer (a cue, a box): it may follow a non-answer


def _x(find, kind: Kind, reads: Literal["trigger", "answer"] = "answer", cued: bool = False) -> Extractor:
    return Extractor(find, kind, reads, cued)


EXTRACTORS: dict[str, Extractor] = {
    "trigger-number": _x(trigger_number, "number", "trigger"),
    "answer-is-number": _x(answer_is_number, "number", cued=True),
    "boxed-number": _x(boxed_number, "number", cued=True),
    "last-number": _x(last_number, "number"),
    "trigger-choice": _x(trigger_choice, "choice", "trigger"),
    "answer-is-choice": _x(answer_is_choice, "choice", cued=True),
    "boxed-choice": _x(boxed_choice, "choice", cued=True),
    "paren-choice": _x(paren_choice, "choice"),
    "line-choice": _x(line_choice, "choice"),
    "option-text": _x(option_text, "choice"),
    "trigger-yes-no": _x(trigger_yes_no, "yes_no", "trigger"),
    "answer-is-yes-no": _x(answer_is_yes_no, "yes_no", cued=True),
    "boxed-yes-no": _x(boxed_yes_no, "yes_no", cued=True),
    "first-yes-no": _x(first_yes_no, "yes_no"),
    "last-yes-no": _x(last_yes_no, "yes_no"),
    "trigger-word": _x(trigger_word, "text", "trigger"),
    "answer-is-word": _x(answer_is_word, "text", cued=True),
    "boxed-word": _x(boxed_word, "text", cued=True),
    "quoted-word": _x(quoted_word, "text"),
    "last-word": _x(last_word, "text"),
    "code-block": _x(code_block, "code"),
    "code-raw": _x(code_raw, "code"),
}


def check_chain(chain: list[str]) -> None:
    unknown = [n for n in chain if n not in EXTRACTORS]
    if unknown:
        raise ConfigError(f"unknown extractor(s) {', '.join(unknown)}; valid: {', '.join(EXTRACTORS)}")
    kinds = {EXTRACTORS[n].kind for n in chain}
    if len(kinds) > 1:
        raise ConfigError(f"extractor chain {chain} mixes answer types {sorted(kinds)}; use one type per chain")


Hit = tuple[str | None, Found]


def _run(names: list[str], text: str, x: ExtractInput) -> Hit:
    for name in names:
        found = EXTRACTORS[name].find(text, x)
        if found is not None:
            return name, found
    return None, None


def _segment(seg: str, names: list[str], cued: list[str], x: ExtractInput, first: bool) -> Hit:
    """One stretch of text: its first (trigger) or last (first pass) statement, answer or non-answer."""
    abstentions = _abstentions(seg, x, EXTRACTORS[names[0]].kind)
    strong = [a for a in abstentions if not a.weak]
    if first and abstentions:
        a = abstentions[0]
        hit = _run(names, seg[: a.start], x)
        if hit[1] is not None:
            return hit
    elif strong:
        a = strong[-1]
    else:
        hit = _run(names, seg, x)
        if hit[1] is not None or not abstentions:
            return hit
        return names[0], Abstain(abstentions[-1].phrase)  # only a hedge, and no answer stated
    hit = _run(cued, seg[a.tail :], x)  # only an explicitly marked answer may follow a non-answer
    if hit[1] is not None and not isinstance(hit[1], Abstain):
        return hit
    return names[0], Abstain(a.phrase)


def _decide(
    text: str, names: list[str], cued: list[str], x: ExtractInput, first: bool, corrected: list[str] | None = None
) -> Hit:
    """The statement that decides: after the last self-correction that states anything, else the whole text.

    What follows "wait, actually ..." is read for its last statement, with `corrected` (the first-pass
    extractors) when given: a correction re-derives and then concludes.
    """
    kind = EXTRACTORS[names[0]].kind
    for pos in reversed(_corrections(text)[-_MAX_CORRECTIONS:]):
        hit = _segment(text[pos:], corrected or names, cued, x, first=False)
        if hit[1] is None and kind in _FIRST_STATED:
            hit = _segment(text[pos:], [_FIRST_STATED[kind]], cued, x, first=True)
        if hit[1] is not None:
            return hit
    return _segment(text, names, cued, x, first)


def extract(chain: list[str], x: ExtractInput) -> Extraction:
    """Run the chain (see the module docstring for the policy). Without a trigger pass the trigger
    extractors drop out and the first answer extractor is strict."""
    check_chain(chain)
    tried = [n for n in chain if not (EXTRACTORS[n].reads == "trigger" and x.trigger_output is None)]
    if not tried:
        return Extraction(strict=None, lenient=None, extractor=None, tried=[])
    kind = EXTRACTORS[tried[0]].kind
    on_answer = [n for n in tried if EXTRACTORS[n].reads == "answer"]
    cued = [n for n in on_answer if EXTRACTORS[n].cued]

    if kind == "code":  # code is read whole; a refusal without code is an abstention
        name, found = _run(tried, x.answer, x)
        if found is None and (a := _abstentions(_clean(x.answer, "text"), x, "code")):
            return Extraction(None, None, tried[0], tried, abstained=True, abstention=a[-1].phrase)
        return Extraction(strict=found if name == tried[0] else None, lenient=found, extractor=name, tried=tried)

    answer = prepare(x.answer, x, kind)
    if EXTRACTORS[tried[0]].reads == "trigger":
        on_trigger = [n for n in tried if EXTRACTORS[n].reads == "trigger"]
        trigger_text = prepare(x.trigger_output or "", x, kind, trigger=True)
        name, found = _decide(trigger_text, on_trigger, cued, x, first=True, corrected=on_answer)
        if isinstance(found, Abstain):
            return Extraction(None, None, name, tried, abstained=True, abstention=found.phrase)
        if found is not None:
            return Extraction(strict=found, lenient=found, extractor=name, tried=tried)
        if not on_answer:
            return Extraction(None, None, None, tried)
        name, found = _decide(answer, on_answer, cued, x, first=False)
        if kind == "choice" and (
            found in _ruled_out(trigger_text, x)  # the second pass rejected it
            or name not in cued
            and found in _ruled_out(answer, x)
        ):  # or the first pass did
            name, found = None, None
        strict = None
    else:
        name, found = _decide(answer, on_answer, cued, x, first=False)
        if kind == "choice" and name not in cued and found in _ruled_out(answer, x):
            name, found = None, None
        strict = found if name == tried[0] and isinstance(found, str) else None
    if isinstance(found, Abstain):
        return Extraction(None, None, name, tried, abstained=True, abstention=found.phrase)
    return Extraction(strict=strict, lenient=found, extractor=name if found is not None else None, tried=tried)


def is_correct(answer_type: str, predicted: str | None, reference: str) -> bool:
    """Compare a normalized prediction with the reference (code is judged by execution, not here)."""
    if predicted is None:
        return False
    if answer_type == "number":
        ref = normalize_number(reference)
        return ref is not None and abs(float(predicted) - float(ref)) < 1e-6
    if answer_type in ("yes_no", "text"):
        return unicodedata.normalize("NFC", predicted.strip().lower()) == unicodedata.normalize(
            "NFC", reference.strip().lower()
        )
    return predicted.strip() == reference.strip()
