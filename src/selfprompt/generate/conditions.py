"""Conditions: how a model is asked a question, and how its output is read back.

    plain                question only
    manual-role          two-turn immersion (Kong et al. 2023) with a role prompt written by us:
                         user sets the role, the assistant accepts it, then the question
    icl-self-prompt      an untuned model writes its own expert role prompt (step 1, few-shot),
                         then answers inside the two-turn immersion with that role (step 2); a written
                         role that fails the role checks is replaced by the prompt file's fallback role
                         (problem "role-fallback", the failed check in `role_check`)
    self-prompt          a self-prompt-tuned model writes role and answer unprompted; parsed with the format
                         (max_tokens + SELF_PROMPT_ROLE_ALLOWANCE: the role does not eat the answer's budget);
                         its role is checked too and the verdict recorded in `role_check` (the answer is
                         what the model wrote after it, whatever the verdict)
    self-prompt-no-role  ablation: the tuned model's role is forced empty by prefilling an empty role block

Each condition is one registered object (`get_condition(name)`) that knows the requests it sends (one
step, or two for icl-self-prompt), how its output is read, what it adds to a generation's cache key,
which prompt files it reads and whether it needs a manual role. The names are written out here only:
eval, `ask`, `serve`, `judge answers`, the report and the experiment runner ask the registry.

Every step is one batched `backend.generate` call across all questions; `ask` streams the same requests.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from selfprompt.errors import ConfigError, DataError
from selfprompt.format import DEFAULT_FORMAT, SelfPromptFormat
from selfprompt.generate.backends.base import Backend, ChatRequest, ChatResponse, Sampling
from selfprompt.manifest import sha256_text
from selfprompt.prompts import load_prompt, prompt_path, text_field
from selfprompt.records import Message, Usage
from selfprompt.rolecheck import ROLE_CHECKS_VERSION, Checks, role_problem


@dataclass(frozen=True)
class ManualRole:
    """Two-turn immersion of Kong et al. 2023: user sets the role, the assistant accepts, then the question."""

    role_prompt: str  # user turn that sets the role, e.g. "From now on, you are an excellent math teacher ..."
    acceptance: str  # fixed assistant reply that accepts the role
    # Version of the file the role was read from (eval's roles.yaml), part of eval's cache key; None when
    # the role was given directly (`ask --role-prompt`).
    version: str | None = None


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

    def read_fields(self) -> dict[str, Any]:
        """What was read from the output (role, answer, raw, format_held, problem, finish_reason): the fields
        every stored record of a generation carries under these names."""
        return {
            "role": self.role,
            "answer": self.answer,
            "raw": self.raw,
            "format_held": self.format_held,
            "problem": self.problem,
            "finish_reason": self.finish_reason,
        }


@dataclass(frozen=True)
class WrittenRole:
    """icl-self-prompt step 1 for one question: the role to use and how it was chosen."""

    role: str  # the cleaned written role, or the fallback role
    response: ChatResponse  # step 1's response (its usage counts toward the output's)
    problem: str | None  # "role-fallback" when the written role was not usable
    role_check: str  # "ok", or why the written role failed the checks


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
    return IclPrompt(
        id=p.id,
        opener=text_field(p, "opener"),
        instruction=text_field(p, "instruction"),
        examples=tuple(pairs),
        acceptance=text_field(p, "acceptance"),
        fallback_role=text_field(p, "fallback_role"),
    )


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


def default_role_sampling(sampling: Sampling) -> Sampling:
    return sampling.model_copy(
        update={"max_tokens": min(sampling.max_tokens, ROLE_SAMPLING_MAX_TOKENS), "stop": ["\n\n"]}
    )


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
    """ "ok", or why a role a model wrote for `question` is not usable (see selfprompt.rolecheck)."""
    return role_problem(role, question=question, checks=MODEL_ROLE_CHECKS) or "ok"


def choose_role(written: str, question: str) -> tuple[str, str | None, str]:
    """icl-self-prompt step 1's text -> (role to use, problem, role_check).

    The cleaned role when it passes the checks; else the prompt file's fallback role, problem
    "role-fallback" and the reason in role_check."""
    role = clean_role(written)
    verdict = check_role(role, question) if role else "no role written"
    if verdict != "ok":
        return icl_prompt().fallback_role, "role-fallback", verdict
    return role, None, verdict


def immersion_messages(role_prompt: str, acceptance: str, question: str) -> list[Message]:
    return [
        Message(role="user", content=role_prompt),
        Message(role="assistant", content=acceptance),
        Message(role="user", content=question),
    ]


# --- the conditions ---------------------------------------------------------------------------------
class Condition:
    """How a model is asked: one registered instance per condition (see the module docstring).

    Steps: `role_request` (step 1, icl-self-prompt only; None otherwise), then `answer_request`; their
    responses go to `choose_role` and `read_output`. `answer` runs both steps batched; `ask` streams the
    same requests."""

    name: ClassVar[str]
    needs_manual_role: ClassVar[bool] = False  # the role is ours (a ManualRole), not the model's choice
    # The answering turn may hold a role the model wrote, split off with the self-prompt format.
    role_in_answer: ClassVar[bool] = False
    # Output parsed with the self-prompt format (format_held is True/False; None for other conditions).
    parses_format: ClassVar[bool] = False
    role_allowance: ClassVar[int] = 0  # tokens on top of max_tokens for a role written in the answering turn

    @property
    def role_title(self) -> str:
        """How a UI titles the role prompt of this condition's outputs."""
        return "Role prompt (given)" if self.needs_manual_role else "Role prompt (written by the model)"

    def check(self, manual_role: ManualRole | None = None) -> None:
        """Raise ConfigError for settings this condition cannot run with (before any model is loaded)."""
        if self.needs_manual_role and manual_role is None:
            raise ConfigError(
                f"condition '{self.name}' needs the role prompt we give the model: `ask --role-prompt TEXT`; "
                "eval takes each task's role from evaluate/roles.yaml; judge answers has none (use another condition)"
            )

    def prompt_files(self) -> list[Path]:
        """The prompt files this condition reads (an edit to one changes its generations)."""
        return []

    def cache_prompts(self, sampling: Sampling, manual_role: ManualRole | None = None) -> dict[str, Any] | None:
        """What this condition adds to an eval generation's cache key (None: nothing); `sampling` is the
        answering turn's, before any role allowance."""
        return None

    def answers_key_prompt(self) -> str | None:
        """What this condition adds to a `judge answers` key (the prompt file's id, or None)."""
        return None

    def answer_sampling(self, sampling: Sampling) -> Sampling:
        """The answering turn's sampling: `sampling` plus the role allowance where the role shares the turn."""
        if not self.role_allowance:
            return sampling
        return sampling.model_copy(update={"max_tokens": sampling.max_tokens + self.role_allowance})

    def role_request(self, question: str, role_sampling: Sampling) -> ChatRequest | None:
        """Step 1 (the model writes a role), or None for conditions of one step. `role_sampling` is
        usually default_role_sampling(the answering turn's sampling)."""
        return None

    def written_role(self, response: ChatResponse, question: str) -> WrittenRole:
        """Step 1's response read: the role to answer with (see choose_role)."""
        role, problem, role_check = choose_role(response.text, question)
        return WrittenRole(role=role, response=response, problem=problem, role_check=role_check)

    def answer_request(
        self,
        question: str,
        sampling: Sampling,
        *,
        role: str | None = None,
        manual_role: ManualRole | None = None,
        fmt: SelfPromptFormat = DEFAULT_FORMAT,
    ) -> ChatRequest:
        """The request that produces the answer (step 2 for icl-self-prompt, the only step otherwise);
        `sampling` before the role allowance. Conditions differ only in its messages and prefill."""
        return ChatRequest(
            messages=self.answer_messages(question, role=role, manual_role=manual_role),
            sampling=self.answer_sampling(sampling),
            assistant_prefix=self.answer_prefix(fmt),
        )

    def answer_messages(self, question: str, *, role: str | None, manual_role: ManualRole | None) -> list[Message]:
        """The answering turn's messages: the question alone unless the condition sets a role first."""
        return [Message(role="user", content=question)]

    def answer_prefix(self, fmt: SelfPromptFormat) -> str:
        """The prefilled start of the answering turn ("" for none)."""
        return ""

    def read_answer(
        self,
        text: str,
        fmt: SelfPromptFormat = DEFAULT_FORMAT,
    ) -> tuple[str | None, str, bool | None, str | None]:
        """(role, answer, format_held, problem) of the answering turn's full text (prefill included).

        Only the self-prompt conditions put a role in the answering turn; elsewhere the whole text is the
        answer, even when it opens with "You are a ..." or carries tags."""
        return None, text.strip(), None, None

    def read_output(
        self,
        question: str,
        request: ChatRequest,
        response: ChatResponse,
        *,
        role: str | None = None,
        fmt: SelfPromptFormat = DEFAULT_FORMAT,
        problem: str | None = None,
        extra_usage: Usage | None = None,
        role_check: str | None = None,
    ) -> ConditionOutput:
        """Turn the answering response into a ConditionOutput (a role the tuned model wrote is checked,
        and only the verdict recorded)."""
        raw = response.text
        parsed_role, answer, held, parsed_problem = self.read_answer(request.assistant_prefix + raw, fmt)
        if self.parses_format:
            role, problem = parsed_role, parsed_problem
            role_check = check_role(role, question) if self.role_in_answer and role else None
        elif self.needs_manual_role:
            role = request.messages[0].content
        return ConditionOutput(
            question=question,
            condition=self.name,
            role=role,
            answer=answer,
            raw=raw,
            format_held=held,
            problem=problem,
            messages=list(request.messages),
            assistant_prefix=request.assistant_prefix,
            usage=response.usage + (extra_usage or Usage()),
            finish_reason=response.finish_reason,
            role_check=role_check,
        )

    def answer(
        self,
        backend: Backend,
        questions: Sequence[str],
        sampling: Sampling,
        *,
        fmt: SelfPromptFormat = DEFAULT_FORMAT,
        manual_role: ManualRole | None = None,
        role_sampling: Sampling | None = None,
    ) -> list[ConditionOutput]:
        """Ask every question; one batched generate call per step."""
        self.check(manual_role)
        written: list[WrittenRole | None] = [None] * len(questions)
        step1 = [self.role_request(q, role_sampling or default_role_sampling(sampling)) for q in questions]
        if step1 and all(r is not None for r in step1):
            responses = backend.generate(step1)
            written = [self.written_role(resp, q) for q, resp in zip(questions, responses)]
        requests = [
            self.answer_request(q, sampling, role=w.role if w else None, manual_role=manual_role, fmt=fmt)
            for q, w in zip(questions, written)
        ]
        responses = backend.generate(requests)
        return [
            self.read_output(
                q,
                req,
                resp,
                role=w.role if w else None,
                fmt=fmt,
                problem=w.problem if w else None,
                extra_usage=w.response.usage if w else None,
                role_check=w.role_check if w else None,
            )
            for q, req, resp, w in zip(questions, requests, responses, written)
        ]


_REGISTRY: dict[str, Condition] = {}
C = TypeVar("C", bound=type[Condition])


def register_condition(cls: C) -> C:
    """Class decorator: one instance of `cls` becomes the condition named `cls.name`."""
    if cls.name in _REGISTRY:
        raise ValueError(f"condition '{cls.name}' registered twice")
    _REGISTRY[cls.name] = cls()
    return cls


def get_condition(name: str) -> Condition:
    """The condition registered as `name`; ConfigError listing the valid names for any other."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown condition '{name}'; valid: {', '.join(_REGISTRY)}") from None


def find_condition(name: str) -> Condition | None:
    """The condition registered as `name`, or None (a name from another tool's predictions)."""
    return _REGISTRY.get(name)


@register_condition
class Plain(Condition):
    name = "plain"


@register_condition
class ManualRoleCondition(Condition):
    name = "manual-role"
    needs_manual_role = True

    def cache_prompts(self, sampling: Sampling, manual_role: ManualRole | None = None) -> dict[str, Any] | None:
        self.check(manual_role)
        assert manual_role is not None
        return {
            "roles_version": manual_role.version,
            "role": sha256_text(manual_role.role_prompt + "\0" + manual_role.acceptance),
        }

    def answer_messages(self, question: str, *, role: str | None, manual_role: ManualRole | None) -> list[Message]:
        self.check(manual_role)
        assert manual_role is not None
        return immersion_messages(manual_role.role_prompt, manual_role.acceptance, question)


@register_condition
class IclSelfPrompt(Condition):
    name = "icl-self-prompt"

    def prompt_files(self) -> list[Path]:
        return [prompt_path(ICL_PROMPT_FILE)]

    def cache_prompts(self, sampling: Sampling, manual_role: ManualRole | None = None) -> dict[str, Any] | None:
        return {
            "prompt": icl_prompt().id,
            "max_role_chars": MAX_ROLE_CHARS,
            "role_checks": role_checks_id(),
            "role_sampling": default_role_sampling(sampling).model_dump(),
        }

    def answers_key_prompt(self) -> str | None:
        return icl_prompt().id

    def role_request(self, question: str, role_sampling: Sampling) -> ChatRequest | None:
        # Prefilling the opener keeps a 135M model on task; servers that ignore prefill still see the
        # pattern three times in the examples.
        return ChatRequest(
            messages=role_messages(question), sampling=role_sampling, assistant_prefix=icl_prompt().opener
        )

    def answer_messages(self, question: str, *, role: str | None, manual_role: ManualRole | None) -> list[Message]:
        if role is None:
            raise ConfigError(f"{self.name} needs the role written in step 1")
        return immersion_messages(role, icl_prompt().acceptance, question)


class _TunedCondition(Condition):
    parses_format = True

    def read_answer(
        self,
        text: str,
        fmt: SelfPromptFormat = DEFAULT_FORMAT,
    ) -> tuple[str | None, str, bool | None, str | None]:
        parsed = fmt.parse(text)
        return parsed.role, parsed.answer, parsed.held, parsed.problem


@register_condition
class SelfPrompt(_TunedCondition):
    name = "self-prompt"
    role_in_answer = True
    role_allowance = SELF_PROMPT_ROLE_ALLOWANCE

    def cache_prompts(self, sampling: Sampling, manual_role: ManualRole | None = None) -> dict[str, Any] | None:
        return {"role_allowance": self.role_allowance}


@register_condition
class SelfPromptNoRole(_TunedCondition):
    name = "self-prompt-no-role"

    def answer_prefix(self, fmt: SelfPromptFormat) -> str:
        return fmt.role_prefix("")  # an empty role block: the tuned model answers without writing one


CONDITIONS: tuple[str, ...] = tuple(_REGISTRY)  # every condition's name, in registration order
DEFAULT_CONDITION = Plain.name


# --- by name ----------------------------------------------------------------------------------------
def check_condition(condition: str, manual_role: ManualRole | None = None) -> Condition:
    """The named condition, checked against its settings (ConfigError for an unknown name or a missing role)."""
    cond = get_condition(condition)
    cond.check(manual_role)
    return cond


def read_answer(
    condition: str,
    text: str,
    fmt: SelfPromptFormat = DEFAULT_FORMAT,
) -> tuple[str | None, str, bool | None, str | None]:
    """Condition.read_answer by name. A condition named elsewhere (predictions from another tool) is read
    for a tagged role only."""
    cond = find_condition(condition)
    if cond is not None:
        return cond.read_answer(text, fmt)
    parsed = fmt.parse(text, untagged=False)
    return parsed.role, parsed.answer, parsed.held, parsed.problem


def answer_questions(
    backend: Backend,
    questions: Sequence[str],
    condition: str | Condition,
    sampling: Sampling,
    *,
    fmt: SelfPromptFormat = DEFAULT_FORMAT,
    manual_role: ManualRole | None = None,
    role_sampling: Sampling | None = None,
) -> list[ConditionOutput]:
    """Ask every question under `condition` (a name or a Condition); see Condition.answer."""
    cond = get_condition(condition) if isinstance(condition, str) else condition
    return cond.answer(backend, questions, sampling, fmt=fmt, manual_role=manual_role, role_sampling=role_sampling)
