"""llama.cpp in-process through llama-cpp-python (extra: selfprompt[llamacpp]).

The prompt is rendered by us from the chat template embedded in the GGUF file, with the same
Jinja renderer transformers uses, so hf and llamacpp see the same prompt text for a request,
and an `assistant_prefix` renders as it did in training (chat_prompt.py). Generation then goes
through llama.cpp's plain completion API (special tokens in the prompt are parsed as tokens).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from typing import Any

from selfprompt.errors import ConfigError
from selfprompt.generate.backends.base import Backend, ChatRequest, ChatResponse, Sampling
from selfprompt.generate.backends.chat_prompt import render_chat_prompt
from selfprompt.hardware import Decision, cpu_facts, usable_cores
from selfprompt.models import ResolvedModel, resolve_model
from selfprompt.progress import report_step
from selfprompt.records import Usage

CHAT_TEMPLATE_KEY = "tokenizer.chat_template"


def render_with_template(template: str, request: ChatRequest, bos_token: str, eos_token: str) -> str:
    """The prompt text for `request` under a Jinja chat template, as transformers would render it (prefill
    included, see selfprompt.generate.backends.chat_prompt)."""
    from transformers.utils.chat_template_utils import render_jinja_template

    def render(messages: list[dict], **kwargs: Any) -> str:
        rendered, _ = render_jinja_template(
            conversations=[messages], chat_template=template, bos_token=bos_token, eos_token=eos_token, **kwargs
        )
        return rendered[0]

    return render_chat_prompt(render, request)


def completion_kwargs(sampling: Sampling) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "max_tokens": sampling.max_tokens,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "stop": sampling.stop or None,
    }
    if sampling.seed is not None:
        kwargs["seed"] = sampling.seed
    return kwargs


def json_schema_of(response_format: dict[str, Any]) -> dict[str, Any]:
    """The JSON schema an OpenAI-style response_format asks for (any JSON object when it names none)."""
    kind = response_format.get("type")
    if kind == "json_schema":
        return response_format.get("json_schema", {}).get("schema") or {"type": "object"}
    if kind == "json_object":
        return response_format.get("schema") or {"type": "object"}
    raise ConfigError(f"the llamacpp backend supports response_format json_schema and json_object, not {kind!r}")


class LlamaCppBackend(Backend):
    name = "llamacpp"

    def __init__(
        self, model: str | ResolvedModel = "default", n_ctx: int = 4096, n_threads: int | None = None, **_: Any
    ):
        super().__init__()
        try:
            from llama_cpp import Llama
        except ImportError:
            raise ConfigError(
                "the llamacpp backend needs llama-cpp-python: pip install 'selfprompt[llamacpp]' (compiles ~8 min), "
                "or use --backend hf"
            ) from None
        self.resolved = model if isinstance(model, ResolvedModel) else resolve_model(model)
        threads = n_threads or usable_cores()
        self.llm = Llama(model_path=self.resolved.require_gguf(), n_ctx=n_ctx, n_threads=threads, verbose=False)
        self.decisions = {
            "threads": Decision(
                "threads",
                n_threads or "auto",
                threads,
                "set explicitly" if n_threads else f"one per usable core of CPU {cpu_facts().describe()}",
            ).as_dict()
        }
        self.template = self.llm.metadata.get(CHAT_TEMPLATE_KEY)
        if not self.template:
            raise ConfigError(f"{self.resolved.gguf_path} has no embedded chat template ({CHAT_TEMPLATE_KEY})")
        self.bos_token = self._token_text(self.llm.token_bos())
        self.eos_token = self._token_text(self.llm.token_eos())
        self._grammars: dict[str, Any] = {}
        self.resolved.content_hash  # the id of what was just loaded, hashed now (remembered after the first time)

    def _token_text(self, token_id: int) -> str:
        if token_id < 0:
            return ""
        return self.llm.detokenize([token_id], special=True).decode("utf-8", errors="replace")

    @property
    def model_id(self) -> str:
        return self.resolved.model_id

    @property
    def model_name(self) -> str:
        return self.resolved.name

    def render(self, request: ChatRequest) -> str:
        return render_with_template(self.template, request, self.bos_token, self.eos_token)

    def _kwargs(self, request: ChatRequest) -> dict[str, Any]:
        """Sampling settings, plus a grammar when the request asks for JSON: llama.cpp then cannot
        emit anything the schema does not allow (the structured output of OpenAI-style servers)."""
        kwargs = completion_kwargs(request.sampling)
        if request.wants_json:
            kwargs["grammar"] = self._grammar(json_schema_of(request.response_format))
        return kwargs

    def _grammar(self, schema: dict[str, Any]) -> Any:
        from llama_cpp import LlamaGrammar

        text = json.dumps(schema, sort_keys=True)
        if text not in self._grammars:
            self._grammars[text] = LlamaGrammar.from_json_schema(text, verbose=False)
        return self._grammars[text]

    def generate(self, requests: Sequence[ChatRequest]) -> list[ChatResponse]:
        # llama.cpp runs one sequence at a time in this binding; the lock keeps threads off each other.
        with self._lock:
            responses = []
            for r in requests:
                if len(requests) > 1:  # one sequence at a time: the batch's replies show on the progress line
                    report_step(len(responses), len(requests), len(requests), "replies")
                responses.append(self._complete(r))
            return responses

    def _complete(self, request: ChatRequest) -> ChatResponse:
        started = time.perf_counter()
        out = self.llm.create_completion(self.render(request), **self._kwargs(request))
        choice, usage = out["choices"][0], out.get("usage") or {}
        return ChatResponse(
            text=choice["text"],
            finish_reason="length" if choice.get("finish_reason") == "length" else "stop",
            usage=Usage(
                prompt_tokens=usage.get("prompt_tokens", 0), completion_tokens=usage.get("completion_tokens", 0)
            ),
            model=self.model_id,
            seconds=time.perf_counter() - started,
        )

    def stream(self, request: ChatRequest) -> Iterator[str]:
        with self._lock:
            for chunk in self.llm.create_completion(self.render(request), stream=True, **self._kwargs(request)):
                piece = chunk["choices"][0]["text"]
                if piece:
                    yield piece

    def close(self) -> None:
        llm, self.llm = getattr(self, "llm", None), None
        if llm is not None and hasattr(llm, "close"):
            llm.close()
