"""Any OpenAI-compatible chat server (OpenAI, vLLM, SGLang, llama.cpp's server, Ollama) via the official client.

Both clients are built with `max_retries=0`: retries, rate limits and caching belong to
`selfprompt.generate.reliable`, which needs to see the original `openai` exceptions, so this
module lets them propagate unchanged.

The API key is read from the environment variable named by `api_key_env` and is never stored
anywhere else than in the client object. Local servers need no key; a placeholder is sent then.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlparse

from selfprompt.errors import ConfigError, ServiceStopped
from selfprompt.generate.backends.base import Backend, ChatRequest, ChatResponse
from selfprompt.records import Usage

NO_KEY_PLACEHOLDER = "sk-no-key"  # servers without auth (llama.cpp, vLLM, Ollama) accept any key
_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}


def resolve_api_key(api_key_env: str, base_url: str | None) -> str:
    """The key from the environment; a placeholder for self-hosted servers; an error for OpenAI itself."""
    key = os.environ.get(api_key_env)
    if key:
        return key
    host = urlparse(base_url).hostname if base_url else None
    if host and (host in _LOCAL_HOSTS or not host.endswith("openai.com")):
        return NO_KEY_PLACEHOLDER
    raise ConfigError(
        f"no API key: set the environment variable {api_key_env} (or name another one with --api-key-env), "
        "or point --base-url at a self-hosted OpenAI-compatible server"
    )


def request_kwargs(model: str, request: ChatRequest) -> dict[str, Any]:
    """The chat.completions.create arguments for one request (without `stream`)."""
    messages = [m.model_dump() for m in request.messages]
    s = request.sampling
    kwargs: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "max_tokens": s.max_tokens,
        "temperature": s.temperature,
        "top_p": s.top_p,
    }
    if s.seed is not None:
        kwargs["seed"] = s.seed
    if s.stop:
        kwargs["stop"] = s.stop
    if request.response_format is not None:
        kwargs["response_format"] = request.response_format
    if request.assistant_prefix:
        # vLLM / SGLang semantics: continue the last assistant message instead of opening a new turn.
        messages.append({"role": "assistant", "content": request.assistant_prefix})
        kwargs["extra_body"] = {"continue_final_message": True, "add_generation_prompt": False}
    return kwargs


def to_response(completion: Any, seconds: float) -> ChatResponse:
    choice = completion.choices[0]
    usage = completion.usage
    return ChatResponse(
        text=choice.message.content or "",
        # content_filter / tool_calls end a turn too; only "length" means "cut off".
        finish_reason="length" if choice.finish_reason == "length" else "stop",
        usage=Usage(prompt_tokens=usage.prompt_tokens or 0, completion_tokens=usage.completion_tokens or 0)
        if usage
        else Usage(),
        model=completion.model or "",
        seconds=seconds,
    )


class OpenAIBackend(Backend):
    name = "openai"

    def __init__(
        self,
        model: str = "default",
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 120.0,
        concurrency: int = 8,
        **_: Any,
    ):
        super().__init__()
        from openai import OpenAI

        self.model = model
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
        self.timeout = timeout
        self.concurrency = max(1, concurrency)  # threads used by generate() for a batch
        self._api_key = resolve_api_key(api_key_env, self.base_url)
        self.client = OpenAI(api_key=self._api_key, base_url=self.base_url, timeout=timeout, max_retries=0)
        self._async_clients: dict[int, Any] = {}

    @property
    def model_id(self) -> str:
        return self.model

    def _complete(self, request: ChatRequest) -> ChatResponse:
        started = time.perf_counter()
        try:
            completion = self.client.chat.completions.create(**request_kwargs(self.model, request))
        except Exception as exc:  # noqa: BLE001 - only refusals no retry can fix are turned into a message
            self._raise_if_stopping(exc)
            raise
        return to_response(completion, time.perf_counter() - started)

    def _raise_if_stopping(self, exc: BaseException) -> None:
        """Direct callers (eval, ask, answers) get a plain message, not a traceback, for a failure no retry can
        fix (bad key, unknown model, exhausted quota). The async path used by the reliable layer keeps the
        original exception, which that layer classifies itself."""
        from selfprompt.generate.reliable import classify

        failure = classify(exc)
        if not failure.retryable:
            where = self.base_url or "the OpenAI API"
            raise ServiceStopped(f"{where} refused the request for model '{self.model}': {failure.message}") from exc

    def generate(self, requests: Sequence[ChatRequest]) -> list[ChatResponse]:
        if len(requests) <= 1:
            return [self._complete(r) for r in requests]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(requests))) as pool:
            return list(pool.map(self._complete, requests))  # the first exception propagates as is

    def stream(self, request: ChatRequest) -> Iterator[str]:
        chunks = self.client.chat.completions.create(**request_kwargs(self.model, request), stream=True)
        try:
            for chunk in chunks:
                if chunk.choices and chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content
        finally:
            chunks.close()

    def _async_client(self) -> Any:
        # An AsyncOpenAI client holds connections bound to the event loop that opened them, so
        # each loop (e.g. each asyncio.run) gets its own client.
        from openai import AsyncOpenAI

        loop = asyncio.get_running_loop()
        client = self._async_clients.get(id(loop))
        if client is None:
            client = AsyncOpenAI(api_key=self._api_key, base_url=self.base_url, timeout=self.timeout, max_retries=0)
            self._async_clients = {id(loop): client}  # older loops are gone; drop their clients
        return client

    async def agenerate(self, request: ChatRequest) -> ChatResponse:
        started = time.perf_counter()
        completion = await self._async_client().chat.completions.create(**request_kwargs(self.model, request))
        return to_response(completion, time.perf_counter() - started)

    async def aclose(self) -> None:
        # Closing inside the loop avoids "Event loop is closed" noise when asyncio.run ends.
        client = self._async_clients.pop(id(asyncio.get_running_loop()), None)
        if client is not None:
            await client.close()

    def close(self) -> None:
        self.client.close()

    def __repr__(self) -> str:  # never show the key
        return f"OpenAIBackend(model={self.model!r}, base_url={self.base_url!r})"
