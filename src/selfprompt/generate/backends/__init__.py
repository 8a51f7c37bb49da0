"""Backend registry: `get_backend(name, model=..., **options)`.

    hf        transformers in-process, batched generation (CPU or GPU)
    llamacpp  llama.cpp in-process through llama-cpp-python (extra: selfprompt[llamacpp])
    openai    any OpenAI-compatible server; --base-url, --api-model, key from an environment variable
"""

from __future__ import annotations

from typing import Any

from selfprompt.errors import ConfigError
from selfprompt.generate.backends.base import Backend, ChatRequest, ChatResponse, Sampling

BACKENDS = ("hf", "llamacpp", "openai")
# Backends that honour ChatRequest.response_format (a JSON schema); hf refuses such requests.
STRUCTURED_OUTPUT_BACKENDS = ("llamacpp", "openai")

__all__ = ["BACKENDS", "STRUCTURED_OUTPUT_BACKENDS", "Backend", "ChatRequest", "ChatResponse", "Sampling", "get_backend"]


def get_backend(name: str, **options: Any) -> Backend:
    if name == "hf":
        from selfprompt.generate.backends.hf import HFBackend

        return HFBackend(**options)
    if name == "llamacpp":
        from selfprompt.generate.backends.llamacpp import LlamaCppBackend

        return LlamaCppBackend(**options)
    if name == "openai":
        from selfprompt.generate.backends.openai_compat import OpenAIBackend

        return OpenAIBackend(**options)
    raise ConfigError(f"unknown backend '{name}'; valid: {', '.join(BACKENDS)}")
