"""The small typed records that stages exchange through JSONL files.

Every record is a pydantic model with `extra="forbid"`, so a misspelled field in a hand-made
file is an error (reported as file:line:field by `selfprompt.jsonl.read_records`), not a silent
default.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Message(Record):
    role: Literal["system", "user", "assistant"]
    content: str


class Example(Record):
    """One instruction/answer pair from any source (LIMA, Alpaca, Dolly, a benchmark...)."""

    id: str = Field(description="Stable id, unique within its source file, e.g. 'lima-00042'.")
    question: str = Field(description="The user's instruction, as the model will see it.")
    answer: str = Field(default="", description="Reference answer; empty when the source has none.")
    source: str = Field(default="unknown", description="Where the row came from, e.g. 'lima'.")
    turns: list[Message] | None = Field(
        default=None, description="Full conversation for multi-turn sources; None for single-turn."
    )


AnnotationStatus = Literal["ok", "refused", "invalid", "error"]


class Usage(Record):
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
        )


class Annotation(Record):
    """Provenance of one role prompt: who wrote it, with which template, and how it went."""

    teacher: str = Field(description="Teacher model id as the backend reported it.")
    backend: str = Field(default="", description="Client backend name: hf, llamacpp, openai.")
    template: str = Field(description="Annotation template name.")
    template_version: str = Field(description="Annotation template version; part of the cache key.")
    status: AnnotationStatus
    reason: str = Field(default="", description="Why the status is not 'ok' (refusal text, failed check).")
    attempts: int = Field(default=1, ge=0, description="Requests made for this row, retries included.")
    usage: Usage = Field(default_factory=Usage)
    seconds: float = Field(default=0.0, ge=0.0, description="Wall time spent on this row.")
    cached: bool = Field(default=False, description="True when every request was served from cache.")


class RoleExample(Example):
    """A LIMA-Role row: the example, the teacher's expert role prompt, and its provenance."""

    role_prompt: str = Field(
        default="", description="Second-person expert role-play prompt; empty unless status is ok."
    )
    annotation: Annotation
