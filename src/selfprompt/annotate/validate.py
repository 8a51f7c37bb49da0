"""Parse and check one teacher reply: is it a usable expert role-play prompt for this question?

`check_reply` returns a `Verdict` with status ok / refused / invalid and a reason a person (and the
teacher, on retry) can act on. The checks are heuristics meant to hold for real outputs, from
GPT-4-class teachers down to a 135M model:

* parse: JSON (`{"role_prompt": ...}`, even truncated or fenced) or plain text with any preamble
  ("Sure! Here is ...:") and trailing continuation ("Question: ...") cut off;
* refusal ("I'm sorry, but I can't ...") -> refused, kept with its reason;
* repeated sentences dropped (small teachers loop), then: not repetitive within sentences,
  length bounds in words, second person, not written in the first person;
* no answer leakage: no sentence that states an answer, no long word run shared with the reference
  answer that is not also in the question (restating the topic is allowed), no short reference
  answer or final number verbatim;
* not a copy of a few-shot exemplar.

The checks after parsing are `selfprompt.rolecheck.role_problem`, shared with the roles models write
at generation time.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal

from selfprompt.annotate.template import AnnotationTemplate
from selfprompt.rolecheck import SECOND_PERSON, final_answer, ngrams, role_problem, words  # noqa: F401

ROLE_OPENING = re.compile(r"from now on,?\s+you\s+are", re.IGNORECASE)
REFUSAL = re.compile(
    r"\b(i'?m sorry|i am sorry|i apologi[sz]e|sorry, but|i can(?:'|no)?t (?:help|assist|comply|provide|write|create|"
    r"fulfil|fulfill|do that|answer)|i (?:am|'m) (?:not able|unable) to|i won'?t (?:be able to|help|write)|"
    r"as an ai(?: language model)?,? i (?:cannot|can't|am not able|am unable|do not|don't))",
    re.IGNORECASE,
)
# Where a weak teacher starts a new turn or an answer after the role prompt.
CONTINUATION = re.compile(
    r"\n\s*(?:#+\s*)?(?:question|answer|user|assistant|q|a|response|solution)\s*[:：]", re.IGNORECASE
)
PREAMBLE = re.compile(r"^(?:sure|certainly|of course|okay|ok|here(?:'s| is)|below is)\b[^\n]*?:\s*", re.IGNORECASE)
LABEL = re.compile(r"^(?:\**\s*(?:expert\s+)?role(?:[- ]play)?(?:\s+prompt)?\s*\**\s*[:：]\s*)", re.IGNORECASE)

Status = Literal["ok", "refused", "invalid"]


@dataclass
class Parsed:
    text: str  # the role prompt as extracted
    structured: bool  # came from a JSON object
    notes: list[str]  # what the parser had to repair (for the reason text)


@dataclass
class Verdict:
    status: Status
    reason: str
    role_prompt: str  # the parsed role prompt ("" unless status is ok)


# ---------------------------------------------------------------------------------------------
# Parsing


def parse_reply(text: str, *, truncated: bool = False) -> Parsed:
    """Extract the role prompt from a raw reply, JSON or plain text."""
    notes: list[str] = []
    raw = _strip_fences(text.strip())
    from_json = _from_json(raw)
    if from_json is not None:
        role, structured = from_json, True
    else:
        role, structured = _from_plain_text(raw, notes), False
    role = _unquote(role.strip())
    if truncated:
        role = _cut_to_last_sentence(role)
        notes.append("cut at max_tokens")
    role = _drop_repeated_sentences(role, notes)
    return Parsed(role.strip(), structured, notes)


def _strip_fences(text: str) -> str:
    fenced = re.match(r"^```[\w-]*\s*\n?(.*?)(?:\n?```\s*)?$", text, re.DOTALL)
    return fenced.group(1).strip() if fenced else text


def _from_json(text: str) -> str | None:
    start = text.find("{")
    if start < 0 or start > 40:  # JSON replies start with the object; prose that mentions '{' is not JSON
        return None
    end = text.rfind("}")
    if end > start:
        try:
            obj = json.loads(text[start : end + 1])
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict):
            return _role_from_object(obj)
    # Truncated JSON (cut at max_tokens): take the string value of role_prompt up to where it stops.
    m = re.search(r'"role_?prompt"\s*:\s*"((?:[^"\\]|\\.)*)', text, re.DOTALL)
    if m:
        try:
            return json.loads('"' + m.group(1).rstrip("\\") + '"')
        except json.JSONDecodeError:
            return m.group(1)
    return None


def _role_from_object(obj: dict) -> str:
    for key in ("role_prompt", "rolePrompt", "role", "prompt"):
        if isinstance(obj.get(key), str):
            return obj[key]
    strings = [v for v in obj.values() if isinstance(v, str)]
    return max(strings, key=len) if strings else ""


def _from_plain_text(text: str, notes: list[str]) -> str:
    opening = ROLE_OPENING.search(text)
    if opening and opening.start() > 0:
        notes.append("dropped a preamble")
        text = text[opening.start() :]
    else:
        text = PREAMBLE.sub("", text, count=1)
        text = LABEL.sub("", text, count=1)
    cont = CONTINUATION.search(text)
    if cont:
        notes.append("dropped text after the role prompt")
        text = text[: cont.start()]
    return _leading_second_person_paragraphs(text, notes)


def _leading_second_person_paragraphs(text: str, notes: list[str]) -> str:
    """Keep paragraphs from the start while they address 'you': a later paragraph that does not is
    usually the teacher starting to answer the question itself."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    if not paragraphs:
        return ""
    kept = [paragraphs[0]]
    for p in paragraphs[1:]:
        if not SECOND_PERSON.search(p):
            notes.append("dropped paragraphs not addressed to 'you'")
            break
        kept.append(p)
    return "\n\n".join(kept)


def _unquote(text: str) -> str:
    pairs = {'"': '"', "“": "”", "'": "'", "«": "»"}
    if len(text) >= 2 and text[0] in pairs and text.endswith(pairs[text[0]]):
        return text[1:-1].strip()
    # A quote left over on one side (the other was cut with a preamble or at max_tokens).
    for opening, closing in pairs.items():
        if text.endswith(closing) and text.count(closing) % 2 == 1 and not text.startswith(opening):
            return text[:-1].rstrip()
        if text.startswith(opening) and text.count(opening) % 2 == 1 and not text.endswith(closing):
            return text[1:].lstrip()
    return text


def _drop_repeated_sentences(text: str, notes: list[str]) -> str:
    """Small teachers loop ("You know X. You know X. ..."); keep each sentence's first occurrence."""
    sentences = re.split(r"(?<=[.!?])\s+", text)
    seen: set[tuple[str, ...]] = set()
    kept = []
    for sentence in sentences:
        key = tuple(words(sentence))
        if key and key in seen:
            continue
        seen.add(key)
        kept.append(sentence)
    if len(kept) < len(sentences):
        notes.append(f"dropped {len(sentences) - len(kept)} repeated sentences")
    return " ".join(kept)


def _cut_to_last_sentence(text: str) -> str:
    ends = [m.end() for m in re.finditer(r"[.!?](?:\s|$)", text)]
    return text[: ends[-1]].strip() if ends else text


# ---------------------------------------------------------------------------------------------
# Checks


def check_reply(
    text: str, *, question: str, answer: str, template: AnnotationTemplate, truncated: bool = False
) -> Verdict:
    """Classify one raw teacher reply for one source example.

    A reply whose role prompt opens with "From now on, you are" is never a refusal, even if it says
    "sorry" somewhere; anything else that declines near its start is."""
    if not text.strip():
        return Verdict("invalid", "empty reply", "")
    parsed = parse_reply(text, truncated=truncated)
    refusal = "" if ROLE_OPENING.match(parsed.text) else refusal_reason(text)
    if refusal:
        return Verdict("refused", refusal, "")
    problem = role_problem(
        parsed.text,
        question=question,
        answer=answer,
        checks=template.checks,
        exemplars=[(ex.question, ex.role_prompt) for ex in template.examples],
    )
    if problem:
        if parsed.notes:
            problem += f" (parser: {', '.join(parsed.notes)})"
        return Verdict("invalid", problem, "")
    return Verdict("ok", "", parsed.text)


def refusal_reason(text: str) -> str:
    """'refusal: <first sentence>' when the reply declines instead of writing a role prompt."""
    head = text.strip()[:300]
    m = REFUSAL.search(head)
    if not m or m.start() > 120:
        return ""
    sentence = re.split(r"(?<=[.!?])\s", head[m.start() :], maxsplit=1)[0]
    return f"refusal: {sentence.strip()[:200]}"
