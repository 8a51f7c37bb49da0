"""Pairwise judging of two answer sets by any LLM backend (the paper's open-ended test).

Every question is judged twice, A-then-B and B-then-A, so that the judge's position bias cancels:
a win needs both orders to agree; any disagreement is a tie and is counted as an inconsistency.
The verdict is read strictly. In the `tags` format (FastChat's) the judge's last non-empty line must
carry exactly one of `[[A]]`, `[[B]]`, `[[C]]` (tie) and no other verdict may appear anywhere. In the
`json` format the reply must be exactly a JSON object `{"comparison": ..., "verdict": "A"|"B"|"tie"}`,
and the request carries that JSON schema as `response_format`, so servers with structured output
(llama.cpp, vLLM, OpenAI) and the llamacpp backend's grammar cannot produce anything else: small
judges that never write a tag line still give verdicts. An unparsable reply is asked
again with feedback and a new seed, a bounded number of times, and then recorded as an error:
never guessed. All requests go through `ReliableClient`, so a rerun or a resumed run sends no
request for work already done.

Answer files are JSONL rows `{id, question, answer, role?}` (extra fields are ignored); a run folder
holding `answers.jsonl` may be given instead of the file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from selfprompt.errors import ConfigError, DataError, ServiceStopped
from selfprompt.evaluate.stats import bootstrap_ci
from selfprompt.format import DEFAULT_FORMAT, SelfPromptFormat
from selfprompt.generate.backends import BACKEND_HELP, DEFAULT_API_KEY_ENV, BackendName, ModelSettings, infer_backend
from selfprompt.generate.backends.base import Backend, ChatRequest, Sampling
from selfprompt.generate.conditions import CONDITIONS, DEFAULT_CONDITION, get_condition
from selfprompt.generate.servers import ServerConfig, server_field
from selfprompt.jsonl import iter_json_lines, validation_error
from selfprompt.prompts import load_prompt, text_field
from selfprompt.records import Message

ANSWERS_FILE = "answers.jsonl"

# The prompt texts are data: selfprompt/prompts/judge-pairwise.yaml, read when used (see verdict_style).
JUDGE_PROMPT_FILE = "judge-pairwise"
RESPONSE_FORMAT_JSON = {
    "type": "json_schema",
    "json_schema": {
        "name": "pairwise_verdict",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"comparison": {"type": "string"}, "verdict": {"type": "string", "enum": ["A", "B", "tie"]}},
            "required": ["comparison", "verdict"],
            "additionalProperties": False,
        },
    },
}
VerdictFormat = Literal["tags", "json"]

_VERDICT = re.compile(r"\[\[([ABC])\]\]")
Verdict = Literal["A", "B", "C"]
Outcome = Literal["win", "tie", "loss", "error"]


# ---------------------------------------------------------------------------------------------
# Inputs


class AnswerRow(BaseModel):
    """One answer to judge. `answer` excludes the role; `role` is the role prompt the model wrote, if any."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(description="Question id, shared by both answer files.")
    question: str
    answer: str
    role: str | None = Field(default=None, description="Role prompt the model wrote before answering, if any.")

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value


def answers_path(run: str | Path) -> Path:
    path = Path(run)
    if path.is_dir():
        path = path / ANSWERS_FILE
    if not path.is_file():
        raise DataError(
            str(path), None, None, f"answer file not found (give a JSONL file or a folder holding {ANSWERS_FILE})"
        )
    return path


def load_answers(run: str | Path) -> dict[str, AnswerRow]:
    path = answers_path(run)
    rows: dict[str, AnswerRow] = {}
    for number, obj in iter_json_lines(path):
        try:
            row = AnswerRow.model_validate(obj)
        except ValidationError as e:
            raise validation_error(path, number, e) from None
        if row.id in rows:
            raise DataError(str(path), number, "id", f"duplicate id '{row.id}'")
        rows[row.id] = row
    return rows


def judged_text(row: AnswerRow, keep_roles: bool, fmt: SelfPromptFormat = DEFAULT_FORMAT) -> str:
    """What the judge sees: the answer alone by default; with keep_roles, role then answer."""
    answer = row.answer
    parsed = fmt.parse(answer)
    if parsed.role is not None and parsed.problem not in ("no-role", "heuristic-role"):
        # A producer left the tagged role inside the answer: take it out here rather than show tags.
        role, answer = (row.role or parsed.role), parsed.answer
    else:
        role = row.role
    if keep_roles and role:
        return f"{role}\n\n{answer}"
    return answer


# ---------------------------------------------------------------------------------------------
# Verdicts


@dataclass(frozen=True)
class ParsedVerdict:
    verdict: Verdict | None
    reasoning: str
    problem: str | None = None


def parse_verdict(text: str) -> ParsedVerdict:
    """Strict: one verdict, on the last non-empty line, and no competing verdict anywhere."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return ParsedVerdict(None, "", "empty reply")
    found = set(_VERDICT.findall(text))
    if not found:
        return ParsedVerdict(None, text.strip(), "no [[A]]/[[B]]/[[C]] verdict")
    if len(found) > 1:
        return ParsedVerdict(None, text.strip(), f"conflicting verdicts {sorted(found)}")
    last = lines[-1]
    if not _VERDICT.search(last):
        return ParsedVerdict(None, text.strip(), "verdict not on the last line")
    reasoning = "\n".join(lines[:-1] + [_VERDICT.sub("", last).strip()]).strip()
    return ParsedVerdict(found.pop(), reasoning)  # type: ignore[arg-type]


_JSON_VERDICTS: dict[str, Verdict] = {"A": "A", "B": "B", "tie": "C"}


def parse_json_verdict(text: str) -> ParsedVerdict:
    """Strict: the whole reply is one JSON object with exactly `comparison` (text) and `verdict`."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        return ParsedVerdict(None, text.strip(), f"not JSON ({e.msg})" if text.strip() else "empty reply")
    if not isinstance(obj, dict) or set(obj) != {"comparison", "verdict"}:
        return ParsedVerdict(None, text.strip(), "not an object with exactly 'comparison' and 'verdict'")
    if not isinstance(obj["comparison"], str) or obj["verdict"] not in _JSON_VERDICTS:
        return ParsedVerdict(None, text.strip(), f"verdict {obj['verdict']!r} is not one of A, B, tie")
    return ParsedVerdict(_JSON_VERDICTS[obj["verdict"]], obj["comparison"].strip())


@dataclass(frozen=True)
class VerdictStyle:
    """Everything that differs between verdict formats: prompt, feedback, constraint, parser."""

    template: str  # style name and version, e.g. pairwise-v1
    prompt_id: str  # the prompt file's name-vVERSION@sha256[:16]
    system: str
    user: str  # format string: {question}, {answer_a}, {answer_b}
    feedback: str
    response_format: dict | None
    parse: Callable[[str], ParsedVerdict]

    @property
    def namespace(self) -> str:
        """The judge's cache namespace: an edited prompt file is asked anew, never served old verdicts."""
        return f"{self.template}:{self.prompt_id}"


_PARSERS: dict[str, tuple[dict | None, Callable[[str], ParsedVerdict]]] = {
    "tags": (None, parse_verdict),
    "json": (RESPONSE_FORMAT_JSON, parse_json_verdict),
}


def verdict_style(verdict_format: str) -> VerdictStyle:
    """The style of one verdict format, with the texts of the judge prompt file as it is now."""
    prompt = load_prompt(JUDGE_PROMPT_FILE)
    response_format, parse = _PARSERS[verdict_format]
    name = text_field(prompt, "styles", verdict_format, "template")
    return VerdictStyle(
        template=name,
        prompt_id=prompt.id,
        system=text_field(prompt, "system"),
        user=text_field(prompt, "answers_block") + text_field(prompt, "styles", verdict_format, "instruction"),
        feedback=text_field(prompt, "styles", verdict_format, "feedback"),
        response_format=response_format,
        parse=parse,
    )


# The texts as read at import time, for callers that show or compare them; judging reads the file when it runs.
STYLES: dict[str, VerdictStyle] = {f: verdict_style(f) for f in _PARSERS}
SYSTEM_PROMPT = STYLES["tags"].system
USER_TEMPLATE, FEEDBACK = STYLES["tags"].user, STYLES["tags"].feedback
USER_TEMPLATE_JSON, FEEDBACK_JSON = STYLES["json"].user, STYLES["json"].feedback


def judge_request(question: str, first: str, second: str, sampling: Sampling, style: VerdictStyle) -> ChatRequest:
    messages = [
        Message(role="system", content=style.system),
        Message(role="user", content=style.user.format(question=question, answer_a=first, answer_b=second)),
    ]
    return ChatRequest(messages=messages, sampling=sampling, response_format=style.response_format)


def retry_request(
    base: ChatRequest, bad_reply: str, feedback: str, attempt: int, retry_temperature: float
) -> ChatRequest:
    """The same question with the bad reply and feedback appended, and a fresh seed."""
    sampling = base.sampling.model_copy(
        update={
            "seed": (base.sampling.seed or 0) + attempt,
            "temperature": max(base.sampling.temperature, retry_temperature),
        }
    )
    messages = [
        *base.messages,
        Message(role="assistant", content=bad_reply or "(empty)"),
        Message(role="user", content=feedback),
    ]
    return base.model_copy(update={"messages": messages, "sampling": sampling})


# ---------------------------------------------------------------------------------------------
# Judging


@dataclass
class OrderResult:
    """One order of one pair: the verdict as the judge wrote it (positions, not runs)."""

    verdict: Verdict | None = None
    reasoning: str = ""
    attempts: int = 0  # judge replies read (cached or not)
    problems: list[str] = field(default_factory=list)
    error: str | None = None
    raw: str = ""


class JudgeConfig(BaseModel):
    """Settings of one pairwise judging run: the options of `selfprompt judge`, its --config file, and an
    experiment's `judge:` section (where a and b are answers labels). Recorded in the manifest."""

    model_config = ConfigDict(extra="forbid")

    a: str | None = Field(
        default=None,
        description="Answers of system A (JSONL file, or a folder with "
        "answers.jsonl); results are from A's side. Required.",
    )
    b: str | None = Field(default=None, description="Answers of system B. Required.")
    out: str | None = Field(
        default=None, description="Output folder: results.json, judgments.jsonl, manifest, cache. Required."
    )
    judge: str = Field(
        default="default",
        description="Judge model: 'default', a local path, or a model name on an OpenAI-compatible server.",
    )
    backend: BackendName = Field(
        default="auto",
        description=BACKEND_HELP.format(embedded="llamacpp"),
        json_schema_extra={"cli": {"flags": ["--judge-backend", "--backend"]}},
    )
    base_url: str | None = Field(
        default=None, description="openai backend: the judge server's base URL (e.g. http://127.0.0.1:8080/v1)."
    )
    api_key_env: str = Field(
        default=DEFAULT_API_KEY_ENV, description="openai backend: environment variable holding the API key."
    )
    server: ServerConfig | None = server_field()
    keep_roles: bool = Field(
        default=False,
        description="Show the judge role + answer instead of the answer alone.",
        json_schema_extra={"cli": {"flags": ["--keep-roles"]}},
    )
    verdict_format: VerdictFormat = Field(
        default="tags",
        description="tags: FastChat's [[A]]/[[B]]/[[C]] last line (strong judges); json: a "
        "schema-constrained JSON verdict (small judges; needs structured output: the llamacpp backend or a server "
        "that supports response_format).",
    )
    max_tokens: int = Field(default=384, ge=1, description="Judge reply length limit.")
    temperature: float = Field(default=0.0, ge=0.0, description="Judge temperature for the first attempt.")
    seed: int = Field(
        default=0, description="Judge seed of the first attempt (retries add the attempt number) and bootstrap seed."
    )
    max_verdict_attempts: int = Field(default=3, ge=1, description="Replies read per order before recording an error.")
    retry_temperature: float = Field(default=0.7, ge=0.0, description="Temperature of retries (greedy would repeat).")
    bootstrap_samples: int = Field(default=2000, ge=100, description="Resamples for the win-rate CI.")
    confidence: float = Field(default=0.95, gt=0.0, lt=1.0, description="Confidence level of the win-rate CI.")
    concurrency: int = Field(default=8, ge=1, description="Judge requests in flight.")
    limit: int | None = Field(default=None, ge=1, description="Judge only the first N shared questions.")

    @property
    def backend_name(self) -> str:
        """The backend that runs the judge (see selfprompt.generate.backends.infer_backend)."""
        return infer_backend(self.judge, self.backend, base_url=self.base_url, embedded="llamacpp", server=self.server)


class AnswersConfig(ModelSettings):
    """Settings of `selfprompt judge answers` (answers to open-ended questions, for the judge): its options, its
    --config file, and an experiment's `answers:` section (whose systems set model and condition)."""

    model_config = ConfigDict(extra="forbid")

    out: str = Field(description="Output folder (answers.jsonl + manifest.json) or a .jsonl file.")
    condition: str = Field(
        default=DEFAULT_CONDITION,
        description="How the questions are asked: "
        + ", ".join(c for c in CONDITIONS if not get_condition(c).needs_manual_role)
        + ".",
    )
    questions: str = Field(
        default="vicuna_bench", description="vicuna_bench | mt_bench | path to a JSONL of questions."
    )
    data_dir: str | None = Field(default=None, description="Local data mirror (default: $SELFPROMPT_DATA_DIR).")
    limit: int | None = Field(default=None, ge=1, description="First N questions only.")
    max_tokens: int = Field(default=256, ge=1, description="Answer length limit in new tokens.")
    seed: int = Field(default=0, description="Sampling seed (greedy decoding ignores it).")
    batch_size: int = Field(default=8, ge=1, description="Questions per generate call and per cache append.")

    @property
    def out_file(self) -> Path:
        out = Path(self.out)
        return out if out.suffix == ".jsonl" else out / ANSWERS_FILE


def judge_orders(
    client: Any, requests: Sequence[ChatRequest], config: JudgeConfig, progress: Any = None
) -> list[OrderResult]:
    """Judge every request; unparsable replies are re-asked in rounds (batched for concurrency).

    `progress` (a selfprompt.progress.ProgressLine, optional) counts replies, cached ones apart; its total
    is the number of requests, grown by each round of re-asks."""
    style = verdict_style(config.verdict_format)
    results = [OrderResult() for _ in requests]
    current = list(requests)
    pending = list(range(len(requests)))
    tick = (lambda r: progress.advance(1, cached=r.cached)) if progress is not None else None
    for attempt in range(config.max_verdict_attempts):
        if attempt and progress is not None:
            progress.add_total(len(pending))
        replies = client.generate_many([current[i] for i in pending], on_result=tick)
        still = []
        for i, reply in zip(pending, replies):
            result = results[i]
            if reply.response is None and reply.stops_all:  # no quota: stop at once, keep what is cached
                raise ServiceStopped(
                    f"the judge refused the run's requests, so it stopped ({reply.error}); replies "
                    "received so far are cached: rerun the same command to resume"
                )
            if reply.response is None:  # transport failure after the client's own retries
                result.error = f"request failed: {reply.error}"
                continue
            result.attempts += 1
            result.raw = reply.response.text
            parsed = style.parse(reply.response.text)
            if parsed.verdict is not None:
                result.verdict, result.reasoning, result.error = parsed.verdict, parsed.reasoning, None
                continue
            result.problems.append(parsed.problem or "unparsable")
            result.reasoning = parsed.reasoning
            result.error = f"unparsable verdict after {result.attempts} replies: {parsed.problem}"
            current[i] = retry_request(
                requests[i], reply.response.text, style.feedback, attempt + 1, config.retry_temperature
            )
            still.append(i)
        pending = still
        if not pending:
            break
    return results


def combine(ab: OrderResult, ba: OrderResult) -> tuple[Outcome, bool]:
    """(outcome for run A, inconsistent). In the BA order the positions are swapped."""
    if ab.verdict is None or ba.verdict is None:
        return "error", False
    first = {"A": "win", "B": "loss", "C": "tie"}[ab.verdict]
    second = {"A": "loss", "B": "win", "C": "tie"}[ba.verdict]
    if first == second:
        return first, False  # type: ignore[return-value]
    return "tie", True


def judge_pairs(
    client: Any, a: dict[str, AnswerRow], b: dict[str, AnswerRow], config: JudgeConfig, progress: Any = None
) -> list[dict[str, Any]]:
    """Per-item records for every id the two answer sets share (in A's order); `progress` as in judge_orders."""
    ids = [i for i in a if i in b]
    if config.limit:
        ids = ids[: config.limit]
    sampling = Sampling(max_tokens=config.max_tokens, temperature=config.temperature, seed=config.seed)
    style = verdict_style(config.verdict_format)
    requests = []
    for i in ids:
        text_a, text_b = judged_text(a[i], config.keep_roles), judged_text(b[i], config.keep_roles)
        requests.append(judge_request(a[i].question, text_a, text_b, sampling, style))
        requests.append(judge_request(a[i].question, text_b, text_a, sampling, style))
    if progress is not None:
        progress.add_total(len(requests))
    orders = judge_orders(client, requests, config, progress)
    items = []
    for n, i in enumerate(ids):
        ab, ba = orders[2 * n], orders[2 * n + 1]
        outcome, inconsistent = combine(ab, ba)
        items.append(
            {
                "id": i,
                "question": a[i].question,
                "answer_a": a[i].answer,
                "role_a": a[i].role,
                "answer_b": b[i].answer,
                "role_b": b[i].role,
                "outcome": outcome,
                "inconsistent": inconsistent,
                "verdict_ab": ab.verdict,
                "verdict_ba": ba.verdict,
                "reasoning_ab": ab.reasoning,
                "reasoning_ba": ba.reasoning,
                "attempts_ab": ab.attempts,
                "attempts_ba": ba.attempts,
                "problems": ab.problems + ba.problems,
                "error": "; ".join(e for e in (ab.error and f"A-B: {ab.error}", ba.error and f"B-A: {ba.error}") if e)
                or None,
            }
        )
    return items


# ---------------------------------------------------------------------------------------------
# Statistics


def summarize(items: Sequence[dict[str, Any]], config: JudgeConfig) -> dict[str, Any]:
    counts = {k: sum(1 for it in items if it["outcome"] == k) for k in ("win", "tie", "loss", "error")}
    judged = [it for it in items if it["outcome"] != "error"]
    n = len(judged)
    scores = [{"win": 1.0, "tie": 0.5, "loss": 0.0}[it["outcome"]] for it in judged]
    inconsistent = sum(1 for it in judged if it["inconsistent"])
    ci = (
        bootstrap_ci(scores, resamples=config.bootstrap_samples, confidence=config.confidence, seed=config.seed)
        if scores
        else None
    )
    return {
        "n_pairs": len(items),
        "n_judged": n,
        **counts,
        "adjusted_win_rate": (sum(scores) / n) if n else None,
        "win_rate_ci": list(ci) if ci else None,
        "confidence": config.confidence,
        "inconsistent": inconsistent,
        "inconsistency_rate": (inconsistent / n) if n else None,
        "verdict_retries": sum(max(0, it["attempts_ab"] - 1) + max(0, it["attempts_ba"] - 1) for it in items),
        "error_rate": counts["error"] / len(items) if items else None,
    }


def make_client(judge: Backend, cache_path: Path, config: JudgeConfig) -> Any:
    from selfprompt.generate.reliable import ReliableClient

    return ReliableClient(
        judge,
        cache_path=cache_path,
        concurrency=config.concurrency,
        cache_namespace=verdict_style(config.verdict_format).namespace,
    )


def check_overlap(a: dict[str, AnswerRow], b: dict[str, AnswerRow], a_path: Path, b_path: Path) -> None:
    if not any(i in b for i in a):
        raise ConfigError(f"{a_path} and {b_path} share no question id; nothing to judge")
