"""The one client layer: every LLM the project calls (teacher, model under test, judge) is a Backend.

All backends take the same `ChatRequest` and return the same `ChatResponse`, so a stage never
knows whether it talks to transformers in-process, llama.cpp in-process, or an
OpenAI-compatible server (OpenAI, vLLM, SGLang, llama.cpp's server, Ollama).
"""

from __future__ import annotations

import asyncio
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Literal

from pydantic import BaseModel, Field

from selfprompt.records import Message, Usage


class Sampling(BaseModel):
    """Sampling parameters; part of every cache key, so two runs that differ here never share outputs."""

    max_tokens: int = Field(default=512, ge=1, description="Most new tokens to generate.")
    temperature: float = Field(default=0.0, ge=0.0, description="0 means greedy decoding.")
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    seed: int | None = Field(default=0, description="Sampling seed; ignored by greedy decoding.")
    stop: list[str] = Field(default_factory=list, description="Strings that end generation (not included).")


class ChatRequest(BaseModel):
    messages: list[Message]
    sampling: Sampling = Field(default_factory=Sampling)
    assistant_prefix: str = Field(
        default="",
        description="Text the assistant turn starts with (prefill). The response text excludes it. "
        "In-process backends render it as the start of the assistant turn, exactly as training rendered it "
        "(chat_prompt.py); the openai backend sends it as a final assistant message with "
        "continue_final_message (vLLM/SGLang semantics).",
    )
    response_format: dict | None = Field(
        default=None, description="OpenAI-style response_format (JSON schema), for servers that support it."
    )

    @property
    def wants_json(self) -> bool:
        """Whether the caller asked for schema-constrained JSON (response_format other than text)."""
        return self.response_format is not None and self.response_format.get("type") != "text"


FinishReason = Literal["stop", "length", "error"]


class ChatResponse(BaseModel):
    text: str
    finish_reason: FinishReason = "stop"
    usage: Usage = Field(default_factory=Usage)
    model: str = ""
    seconds: float = 0.0


class Backend(ABC):
    """Subclasses implement `generate` (a batch) and `stream` (one request, text deltas)."""

    name: str = "base"

    def __init__(self) -> None:
        # Reentrant: agenerate() holds it while calling generate(), which may take it again (llamacpp does).
        self._lock = threading.RLock()  # in-process models are not safe to call from two threads
        # Choices made from what the machine reports (dtype, threads, ...): knob -> Decision.as_dict(),
        # written into the manifest of every run that uses this backend.
        self.decisions: dict[str, dict] = {}

    @property
    @abstractmethod
    def model_id(self) -> str:
        """The model's id as recorded in manifests and cache keys. In-process backends identify a model by
        its content (`name@hash`, see selfprompt.models); a server's model by the name it is served under."""

    @property
    def model_name(self) -> str:
        """A short name to show and to serve the model under (default: the id)."""
        return self.model_id

    @abstractmethod
    def generate(self, requests: Sequence[ChatRequest]) -> list[ChatResponse]:
        """Answer each request; the order of responses is the order of requests."""

    def stream(self, request: ChatRequest) -> Iterator[str]:
        """Yield the response text in pieces. Default: one piece."""
        yield self.generate([request])[0].text

    async def agenerate(self, request: ChatRequest) -> ChatResponse:
        """Async single request. In-process backends run one request at a time in a thread."""

        def run() -> ChatResponse:
            with self._lock:
                return self.generate([request])[0]

        return await asyncio.to_thread(run)

    async def aclose(self) -> None:
        """Release what `agenerate` opened on the running event loop; call before the loop ends."""

    def close(self) -> None:
        """Release resources (servers, model memory)."""
