"""Annotation templates as data: `templates/<name>-v<version>.yaml` or any YAML file path."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from selfprompt.errors import ConfigError, DataError
from selfprompt.jsonl import validation_error
from selfprompt.records import Message
from selfprompt.rolecheck import Checks

TEMPLATE_DIR = Path(__file__).parent / "templates"
DEFAULT_TEMPLATE = "expert-role-v1"


class SamplingDefaults(BaseModel):
    """Generation settings the template was tuned with; command-line flags override them."""

    model_config = ConfigDict(extra="forbid")

    temperature: float = Field(default=0.0, ge=0.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(default=256, ge=1, description="A role prompt is one paragraph; more is waste.")
    stop: list[str] = Field(default_factory=list, description="End generation here (e.g. at a blank line).")


class Exemplar(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str
    role_prompt: str


class AnnotationTemplate(BaseModel):
    """The instruction, few-shot exemplars and checks that make one annotation prompt."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Template name, recorded in every output row.")
    version: str = Field(description="Bumped whenever the messages change; part of the cache namespace.")
    system: str = Field(description="System message for the teacher.")
    user: str = Field(description="User turn; '{question}' is replaced by the (cut) source question.")
    feedback: str = Field(description="User turn after an invalid reply; '{reason}' names the failed check.")
    structured_system_suffix: str = Field(default="", description="Added to the system message in JSON mode.")
    response_format: dict | None = Field(default=None, description="OpenAI response_format used in JSON mode.")
    max_question_chars: int = Field(
        default=2000, ge=100, description="Longer questions are cut (keeps prompts in context)."
    )
    checks: Checks = Field(default_factory=Checks)
    sampling: SamplingDefaults = Field(default_factory=SamplingDefaults)
    examples: list[Exemplar] = Field(default_factory=list, description="Few-shot exemplars, sent as chat turns.")

    @property
    def id(self) -> str:
        return f"{self.name}-v{self.version}"

    def cut_question(self, question: str) -> str:
        question = question.strip()
        if len(question) <= self.max_question_chars:
            return question
        return question[: self.max_question_chars].rstrip() + " [...]"

    def messages(self, question: str, *, structured: bool = False) -> list[Message]:
        """The full conversation for one question: system, exemplar turns, then the question."""
        system = self.system + (self.structured_system_suffix if structured else "")
        messages = [Message(role="system", content=system)]
        for ex in self.examples:
            reply = json.dumps({"role_prompt": ex.role_prompt}, ensure_ascii=False) if structured else ex.role_prompt
            messages += [
                Message(role="user", content=self._user(ex.question)),
                Message(role="assistant", content=reply),
            ]
        messages.append(Message(role="user", content=self._user(self.cut_question(question))))
        return messages

    def feedback_turns(self, reply: str, reason: str) -> list[Message]:
        """The turns appended to retry after an invalid reply: the reply itself, then what was wrong."""
        return [
            Message(role="assistant", content=reply),
            Message(role="user", content=self.feedback.replace("{reason}", reason)),
        ]

    def _user(self, question: str) -> str:
        # str.replace, not str.format: questions are full of braces (code, JSON, LaTeX).
        return self.user.replace("{question}", question)


def load_template(name_or_path: str | Path = DEFAULT_TEMPLATE) -> AnnotationTemplate:
    """A built-in template by id (e.g. 'expert-role-v1') or a YAML file path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = TEMPLATE_DIR / f"{name_or_path}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in TEMPLATE_DIR.glob("*.yaml"))
        raise ConfigError(f"annotation template '{name_or_path}' not found; built-in: {', '.join(known)}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        raise DataError(str(path), None if line is None else line + 1, None, f"invalid YAML: {e}") from None
    try:
        return AnnotationTemplate.model_validate(data)
    except ValidationError as e:
        raise validation_error(path, None, e) from None
