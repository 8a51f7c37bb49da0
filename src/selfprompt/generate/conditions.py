"""Conditions: how a model is asked a question, and how its output is read back.

    plain                question only
    manual-role          two-turn immersion (Kong et al. 2023) with a role prompt written by us:
                         user sets the role, the assistant accepts it, then the question
    icl-self-prompt      an untuned model writes its own expert role prompt (step 1, few-shot),
                         then answers inside the two-turn immersion with that role (step 2); a written
                         role that fails the role checks is replaced by FALLBACK_ROLE (problem
                         "role-fallback", the failed check in `role_check`)
    self-prompt          a self-prompt-tuned model writes role and answer unprompted; parsed with the format
                         (max_tokens + SELF_PROMPT_ROLE_ALLOWANCE: the role does not eat the answer's budget);
                         its role is checked too and the verdict recorded in `role_check` (the answer is
                         what the model wrote after it, whatever the verdict)
    self-prompt-no-role  ablation: the tuned model's role is forced empty by prefilling an empty role block

Every step is one batched `backend.generate` call across all questions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

from selfprompt.errors import ConfigError, DataError
from selfprompt.format import DEFAULT_FORMAT, SelfPromptFormat
from selfprompt.generate.backends.base import Backend, ChatRequest, ChatResponse, Sampling
from selfprompt.prompts import load_prompt, text_field
from selfprompt.records import Message, Usage
from selfprompt.rolecheck import ROLE_CHECKS_VERSION, Checks, role_problem

CONDITIONS = ("plain", "manual-role", "icl-self-prompt", "self-prompt", "self-prompt-no-role")
SELF_PROMPT_CONDITIONS = ("self-prompt", "self-prompt-no-role")


@dataclass(frozen=True)
class ManualRole:
    """Two-turn immersion of Kong et al. 2023: user sets the role, the assistant accepts, then the question."""

    role_prompt: str  # user turn that sets the role, e.g. "From now on, you are an excellent math teacher ..."
    acceptance: str  # fixed assistant reply that accepts the role


@dataclass
class ConditionOutput:
    question: str
    condition: str
    role: str | None  # role prompt used or written (None for plain, or when a tuned model wrote none)
    answer: str  # answer text with the role removed
    raw: str  # the model's raw text for the answering turn
    format_held: bool | None  # self-prompt conditions: did parse() find the trained format; else None
    problem: str | None  # why the format did not hold, or "role-fallback" when icl wrote no usable role
    messages: list[Message]  # the exact messages of the answering request
    assistant_prefix: str  # prefill used in the answering request ("" if none)
    usage: Usage = field(default_factory=Usage)  # all steps together
    finish_reason: str = "stop"
    # Model-written roles (icl-self-prompt, self-prompt): "ok", or why the role failed the role checks;
    # None where the model wrote no role (plain, manual-role, self-prompt-no-role, no role in the output).
    role_check: str | None = None


# --- icl-self-prompt, step 1: the model writes its own role prompt --------------------------------
# The texts are data, selfprompt/prompts/icl-self-prompt.yaml, read when used: its sha256 is part of the
# cache key of every icl-self-prompt generation (IclPrompt.id), so an edit regenerates exactly those.
ICL_PROMPT_FILE = "icl-self-prompt"


@dataclass(frozen=True)
class IclPrompt:
    id: str  # name-vVERSION@sha256[:16] of the file
    opener: str  # prefilled start of the role the model writes
    instruction: str  # user turn of step 1; {question} is filled in
    examples: tuple[tuple[str, str], ...]  # in-context (question, role prompt) pairs
    acceptance: str  # fixed assistant turn that accepts the role in step 2
    fallback_role: str  # used when the model writes no usable role


def icl_prompt() -> IclPrompt:
    """The icl-self-prompt texts from their prompt file (re-read when the file changes)."""
    p = load_prompt(ICL_PROMPT_FILE)
    examples = p.data.get("examples")
    if not isinstance(examples, list) or not examples:
        raise DataError(p.path, None, "examples", "expected a non-empty list of {question, role}")
    pairs = []
    for k, e in enumerate(examples):
        if not (isinstance(e, dict) and isinstance(e.get("question"), str) and isinstance(e.get("role"), str)):
            raise DataError(p.path, None, f"examples[{k}]", "expected {question: text, role: text}")
        pairs.append((e["question"], e["role"]))
    return IclPrompt(id=p.id, opener=text_field(p, "opener"), instruction=text_field(p, "instruction"),
                     examples=tuple(pairs), acceptance=text_field(p, "acceptance"),
                     fallback_role=text_field(p, "fallback_role"))


# The texts as read at import time, for callers that show or compare them; the functions above and below
# read the file when they run.
_AT_IMPORT = icl_prompt()
ROLE_OPENER = _AT_IMPORT.opener
ROLE_INSTRUCTION = _AT_IMPORT.instruction
ICL_ROLE_EXAMPLES = _AT_IMPORT.examples
ICL_ACCEPTANCE = _AT_IMPORT.acceptance
FALLBACK_ROLE = _AT_IMPORT.fallback_role
MAX_ROLE_CHARS = 400  # a role is a sentence or two; longer text means the model drifted into answering
# The checks annotation applies to a teacher's role (selfprompt.rolecheck), with a lower word minimum:
# the model is asked for a short role ("From now on, you are a chemist who ..."), a teacher for a paragraph.
MODEL_ROLE_CHECKS = Checks(min_words=7)
ROLE_SAMPLING_MAX_TOKENS = 96
# A tuned model writes its role in the same turn as its answer. So that `max_tokens` means the same
# thing in every condition (the answer's budget; icl-self-prompt writes its role in a separate
# step), self-prompt generation gets this many tokens on top for the role and its tags.
SELF_PROMPT_ROLE_ALLOWANCE = 160


def role_messages(question: str) -> list[Message]:
    prompt = icl_prompt()
    messages: list[Message] = []
    for example_question, example_role in prompt.examples:
        messages.append(Message(role="user", content=prompt.instruction.format(question=example_question)))
        messages.append(Message(role="assistant", content=example_role))
    messages.append(Message(role="user", content=prompt.instruction.format(question=question)))
    return messages


def role_request(question: str, role_sampling: Sampling) -> ChatRequest:
    # Prefilling the opener keeps a 135M model on task; servers that ignore prefill still see the
    # pattern three times in the examples.
    return ChatRequest(messages=role_messages(question), sampling=role_sampling, assistant_prefix=icl_prompt().opener)


def default_role_sampling(sampling: Sampling) -> Sampling:
    return sampling.model_copy(update={"max_tokens": min(sampling.max_tokens, ROLE_SAMPLING_MAX_TOKENS),
                                       "stop": ["\n\n"]})


def clean_role(text: str, prefix: str | None = None) -> str:
    """The written role: prefill joined back, first paragraph only, cut at a sentence end within bounds."""
    prefix = icl_prompt().opener if prefix is None else prefix
    text = text.strip()
    echoed = text.lower().find(prefix.lower())
    if 0 <= echoed <= 40:  # a server that ignores prefill writes the opener itself, maybe after "Sure! "
        text = text[echoed:]
    else:
        text = prefix + (" " if text and not text.startswith((",", ".")) else "") + text
    paragraph = re.split(r"\n\s*\n|\n", text, maxsplit=1)[0].strip()
    if len(paragraph) > MAX_ROLE_CHARS:
        cut = paragraph[:MAX_ROLE_CHARS]
        end = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "))
        paragraph = cut[: end + 1] if end > len(prefix) else cut.rstrip() + "."
    if len(paragraph) <= len(prefix) + 3:  # nothing beyond the opener
        return ""
    return paragraph


def role_checks_id() -> str:
    """What decides whether a written role is used: part of an icl-self-prompt generation's identity."""
    return f"v{ROLE_CHECKS_VERSION}:{MODEL_ROLE_CHECKS.model_dump_json()}"


def check_role(role: str, question: str) -> str:
    """"ok", or why a role a model wrote for `question` is not usable (see selfprompt.rolecheck)."""
    return role_problem(role, question=question, checks=MODEL_ROLE_CHECKS) or "ok"


def choose_role(written: str, question: str) -> tuple[str, str | None, str]:
    """icl-self-prompt step 1's text -> (role to use, problem, role_check).

    The cleaned role when it passes the checks; else FALLBACK_ROLE, problem "role-fallback" and the
    reason in role_check."""
    role = clean_role(written)
    verdict = check_role(role, question) if role else "no role written"
    if verdict != "ok":
        return icl_prompt().fallback_role, "role-fallback", verdict
    return role, None, verdict


# --- the answering step ---------------------------------------------------------------------------
def immersion_messages(role_prompt: str, acceptance: str, question: str) -> list[Message]:
    return [
        Message(role="user", content=role_prompt),
        Message(role="assistant", content=acceptance),
        Message(role="user", content=question),
    ]


def answer_request(question: str, condition: str, sampling: Sampling, *, role: str | None = None,
                   manual_role: ManualRole | None = None, fmt: SelfPromptFormat = DEFAULT_FORMAT) -> ChatRequest:
    """The request that produces the answer (step 2 for icl-self-prompt, the only step otherwise)."""
    check_condition(condition, manual_role)
    if condition == "manual-role":
        assert manual_role is not None
        messages = immersion_messages(manual_role.role_prompt, manual_role.acceptance, question)
    elif condition == "icl-self-prompt":
        if role is None:
            raise ConfigError("icl-self-prompt needs the role written in step 1")
        messages = immersion_messages(role, icl_prompt().acceptance, question)
    else:
        messages = [Message(role="user", content=question)]
    prefix = fmt.role_prefix("") if condition == "self-prompt-no-role" else ""
    return ChatRequest(messages=messages, sampling=sampling, assistant_prefix=prefix)


def read_output(question: str, condition: str, request: ChatRequest, response: ChatResponse, *,
                role: str | None = None, fmt: SelfPromptFormat = DEFAULT_FORMAT, problem: str | None = None,
                extra_usage: Usage | None = None, role_check: str | None = None) -> ConditionOutput:
    """Turn the answering response into a ConditionOutput (parsing the format for self-prompt conditions;
    a role the tuned model wrote is checked, and only the verdict recorded)."""
    raw = response.text
    parsed_role, answer, held, parsed_problem = read_answer(condition, request.assistant_prefix + raw, fmt)
    if condition in SELF_PROMPT_CONDITIONS:
        role, problem = parsed_role, parsed_problem
        role_check = check_role(role, question) if condition == "self-prompt" and role else None
    elif condition == "manual-role":
        role = request.messages[0].content
    return ConditionOutput(
        question=question, condition=condition, role=role, answer=answer, raw=raw, format_held=held,
        problem=problem, messages=list(request.messages), assistant_prefix=request.assistant_prefix,
        usage=response.usage + (extra_usage or Usage()), finish_reason=response.finish_reason,
        role_check=role_check,
    )


def read_answer(condition: str, text: str, fmt: SelfPromptFormat = DEFAULT_FORMAT,
                ) -> tuple[str | None, str, bool | None, str | None]:
    """(role, answer, format_held, problem) of the answering turn's full text (prefill included).

    Only the self-prompt conditions put a role in the answering turn, so only their text is parsed
    with the format. Under plain, manual-role and icl-self-prompt the whole text is the answer, even
    when it opens with "You are a ..." or carries tags (format_held and problem are None). A condition
    named elsewhere (predictions from another tool) is read for a tagged role only."""
    if condition in SELF_PROMPT_CONDITIONS:
        parsed = fmt.parse(text)
    elif condition in CONDITIONS:
        return None, text.strip(), None, None
    else:
        parsed = fmt.parse(text, untagged=False)
    return parsed.role, parsed.answer, parsed.held, parsed.problem


def check_condition(condition: str, manual_role: ManualRole | None = None) -> None:
    if condition not in CONDITIONS:
        raise ConfigError(f"unknown condition '{condition}'; valid: {', '.join(CONDITIONS)}")
    if condition == "manual-role" and manual_role is None:
        raise ConfigError("condition 'manual-role' needs a ManualRole (role_prompt and acceptance)")


def write_roles(backend: Backend, questions: Sequence[str], role_sampling: Sampling,
                ) -> list[tuple[str, ChatResponse, str | None, str]]:
    """icl-self-prompt step 1 for all questions: (role, response, problem, role_check) per question."""
    responses = backend.generate([role_request(q, role_sampling) for q in questions])
    written = []
    for question, response in zip(questions, responses):
        role, problem, role_check = choose_role(response.text, question)
        written.append((role, response, problem, role_check))
    return written


def answer_questions(backend: Backend, questions: Sequence[str], condition: str, sampling: Sampling, *,
                     fmt: SelfPromptFormat = DEFAULT_FORMAT, manual_role: ManualRole | None = None,
                     role_sampling: Sampling | None = None) -> list[ConditionOutput]:
    """Ask every question under `condition`; one batched generate call per step."""
    check_condition(condition, manual_role)
    if condition == "icl-self-prompt":
        roles = write_roles(backend, questions, role_sampling or default_role_sampling(sampling))
        requests = [answer_request(q, condition, sampling, role=role, fmt=fmt)
                    for q, (role, *_) in zip(questions, roles)]
        responses = backend.generate(requests)
        return [
            read_output(q, condition, req, resp, role=role, fmt=fmt, problem=problem, extra_usage=role_resp.usage,
                        role_check=check)
            for q, req, resp, (role, role_resp, problem, check) in zip(questions, requests, responses, roles)
        ]
    if condition == "self-prompt":
        sampling = sampling.model_copy(update={"max_tokens": sampling.max_tokens + SELF_PROMPT_ROLE_ALLOWANCE})
    requests = [answer_request(q, condition, sampling, manual_role=manual_role, fmt=fmt) for q in questions]
    responses = backend.generate(requests)
    return [read_output(q, condition, req, resp, fmt=fmt) for q, req, resp in zip(questions, requests, responses)]
