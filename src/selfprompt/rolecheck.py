"""Is this text usable as an expert role prompt for this question? One set of checks for every role,
whoever wrote it: a teacher annotating LIMA (`selfprompt.annotate.validate`), an untuned model writing
its own role (icl-self-prompt), a self-prompt-tuned model (its role is checked and the verdict recorded).

`role_problem` returns "" for a usable role, else the first failed check as a reason a person can act
on:

* length in words within bounds;
* not a repetition loop (share of distinct 3-word runs);
* second person, not written in the first person;
* no answer: when a reference answer is known, no long word run shared with it that the question
  does not also have, no short reference answer or final number verbatim; and no sentence that
  states an answer ("The answer is 7 days.", "#### 7", "\\boxed{7}") the question does not contain;
* not a copy of a few-shot exemplar's role.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

# Bumped whenever a check's logic changes: what a check decides can change a generation (the
# icl-self-prompt fallback), so this and the bounds belong in its cache key.
ROLE_CHECKS_VERSION = "1"

SECOND_PERSON = re.compile(r"\b(you|your|yours|yourself)\b", re.IGNORECASE)
FIRST_PERSON = re.compile(r"\b(i|me|my|mine|myself|i'm|i've)\b", re.IGNORECASE)
WORD = re.compile(r"[\w'’-]+", re.UNICODE)
FINAL_ANSWER = (
    re.compile(r"####\s*([^\n]+)"),
    re.compile(r"\\boxed\{([^{}]+)\}"),
    re.compile(r"(?:final answer|the answer) is:?\s*\$?([-\d.,/]+\d)", re.IGNORECASE),
)
# A role that gives an answer: "the answer is" / "Answer:" followed by a value (a number, an option
# letter, yes/no, true/false, a boxed or quoted value) rather than by words about answering.
STATED_ANSWER = re.compile(
    r"\b(?:(?:the\s+)?(?:final\s+|correct\s+|right\s+)?answer\s*(?:is|would be|will be|=|:)|answer\s*:)\s*"
    r"(?:\$?-?\d|\(?[A-E]\)?(?=[\s.,;:!?)]|$)|(?:yes|no|true|false)\b|\\boxed|[\"“'«])",
    re.IGNORECASE,
)


class Checks(BaseModel):
    """Bounds of the role checks (`role_problem`)."""

    model_config = ConfigDict(extra="forbid")

    min_words: int = Field(default=15, ge=1, description="Shortest acceptable role prompt, in words.")
    max_words: int = Field(default=250, ge=1, description="Longest acceptable role prompt, in words.")
    leak_ngram: int = Field(
        default=8,
        ge=3,
        description="A run of this many words shared with the reference answer, and absent from the "
        "question, counts as answer leakage.",
    )
    short_answer_words: int = Field(
        default=6,
        ge=0,
        description="A reference answer of at most this many words must not appear verbatim in the role prompt.",
    )
    min_distinct_trigrams: float = Field(
        default=0.75,
        ge=0.0,
        le=1.0,
        description="Share of distinct 3-word runs below which a reply counts as repetitive (a looping teacher).",
    )
    exemplar_copy_ngram: int = Field(
        default=12,
        ge=3,
        description="A run of this many words copied from a few-shot exemplar's role prompt makes the reply "
        "invalid (weak teachers copy the example instead of writing for the question).",
    )


def words(text: str) -> list[str]:
    return [w.lower().strip("'’-") for w in WORD.findall(text) if w.strip("'’-")]


def ngrams(tokens: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def role_problem(
    role: str, *, question: str, checks: Checks, answer: str | None = None, exemplars: Sequence[tuple[str, str]] = ()
) -> str:
    """ "" when `role` passes every check, else the reason of the first that fails.

    `answer`: the reference answer when one is known (annotation); None at generation time, where only
    an answer the role states itself counts. `exemplars`: (question, role prompt) pairs shown few-shot."""
    return (
        length_problem(role, checks)
        or repetition_problem(role, checks)
        or person_problem(role)
        or (leak_problem(role, question, answer, checks) if answer is not None else "")
        or stated_answer_problem(role, question)
        or exemplar_problem(role, exemplars, checks)
    )


def length_problem(role: str, checks: Checks) -> str:
    n = len(words(role))
    if n < checks.min_words:
        return f"too short ({n} words; at least {checks.min_words})"
    if n > checks.max_words:
        return f"too long ({n} words; at most {checks.max_words})"
    return ""


def repetition_problem(role: str, checks: Checks) -> str:
    tokens = words(role)
    grams = [tuple(tokens[i : i + 3]) for i in range(len(tokens) - 2)]
    if len(grams) < 10:
        return ""
    distinct = len(set(grams)) / len(grams)
    if distinct < checks.min_distinct_trigrams:
        return f"repeats itself (only {distinct:.0%} of its 3-word runs are distinct)"
    return ""


def person_problem(role: str) -> str:
    second = len(SECOND_PERSON.findall(role))
    if second == 0:
        return "not in the second person (no 'you' or 'your')"
    first = len(FIRST_PERSON.findall(role))
    if first > second:
        return f"written in the first person ({first} first-person vs {second} second-person words)"
    return ""


def stated_answer_problem(role: str, question: str) -> str:
    """A role that answers the question ("The answer is 7 days.") unless the question says the same."""
    question_words = words(question)
    for pattern in (STATED_ANSWER, *FINAL_ANSWER):
        for m in pattern.finditer(role):
            statement = role[m.start() : m.end()] + re.match(r"\S*", role[m.end() :]).group(0)
            if not _contains_run(question_words, words(statement)):
                return f"states an answer ('{_sentence_at(role, m.start())[:80]}')"
    return ""


def _sentence_at(text: str, pos: int) -> str:
    start = max((m.end() for m in re.finditer(r"[.!?]\s+|\n", text[:pos])), default=0)
    end = re.search(r"[.!?](?:\s|$)|\n", text[pos:])
    return text[start : pos + end.end() if end else len(text)].strip()


def leak_problem(role: str, question: str, answer: str, checks: Checks) -> str:
    if not answer.strip():
        return ""
    role_words, question_words, answer_words = words(role), words(question), words(answer)
    n = checks.leak_ngram
    shared = (ngrams(role_words, n) & ngrams(answer_words, n)) - ngrams(question_words, n)
    if shared:
        return f"leaks the reference answer (shares '{' '.join(sorted(shared)[0])}')"
    if (
        0 < len(answer_words) <= checks.short_answer_words
        and _contains_run(role_words, answer_words)
        and not _contains_run(question_words, answer_words)
    ):
        return f"contains the reference answer '{answer.strip()}'"
    final = final_answer(answer)
    if final and _contains_run(role_words, words(final)) and not _contains_run(question_words, words(final)):
        return f"contains the reference's final answer '{final}'"
    return ""


def final_answer(answer: str) -> str:
    """The explicit final answer of a reference ('#### 42', '\\boxed{42}', 'the answer is 42'), if any."""
    for pattern in FINAL_ANSWER:
        found = pattern.findall(answer)
        if found:
            return found[-1].strip().rstrip(".")
    return ""


def _contains_run(haystack: list[str], needle: list[str]) -> bool:
    if not needle or len(needle) > len(haystack):
        return False
    return any(haystack[i : i + len(needle)] == needle for i in range(len(haystack) - len(needle) + 1))


def exemplar_problem(role: str, exemplars: Sequence[tuple[str, str]], checks: Checks) -> str:
    n = checks.exemplar_copy_ngram
    role_grams = ngrams(words(role), n)
    for question, example_role in exemplars:
        if role_grams & ngrams(words(example_role), n):
            return f"copies the few-shot example written for '{question}' instead of writing for this question"
    return ""
