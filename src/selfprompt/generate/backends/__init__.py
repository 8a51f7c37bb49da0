"""Backend registry: `get_backend(name, model=..., **options)`, and `build_backend`, the one way every command
makes its client from (model, backend, base URL, key variable, options).

    hf        transformers in-process, batched generation (CPU or GPU)
    llamacpp  llama.cpp in-process through llama-cpp-python (extra: selfprompt[llamacpp])
    openai    any OpenAI-compatible server; --base-url, key from an environment variable
    auto      chosen from the model by `infer_backend` (the default of every command)
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from selfprompt.errors import ConfigError
from selfprompt.generate.backends.base import Backend, ChatRequest, ChatResponse, Sampling
from selfprompt.generate.servers import ServerConfig, server_field, stage_backend

BACKENDS = ("hf", "llamacpp", "openai")
BACKEND_CHOICES = ("auto", *BACKENDS)
BackendName = Literal["auto", "hf", "llamacpp", "openai"]
InProcess = Literal["hf", "llamacpp"]
# Backends that honour ChatRequest.response_format (a JSON schema); hf refuses such requests.
STRUCTURED_OUTPUT_BACKENDS = ("llamacpp", "openai")
DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"
BACKEND_HELP = (
    "Client backend: auto | hf | llamacpp | openai. auto: the embedded 'default' runs in-process "
    "({embedded} for this command), a .gguf file on llamacpp, a local folder (model or LoRA adapter) "
    "on hf, anything else (or any model with --base-url) on an OpenAI-compatible server."
)

__all__ = [
    "BACKENDS",
    "BACKEND_CHOICES",
    "STRUCTURED_OUTPUT_BACKENDS",
    "Backend",
    "ChatRequest",
    "ChatResponse",
    "Sampling",
    "build_backend",
    "get_backend",
    "infer_backend",
]


class ModelSettings(BaseModel):
    """The model a generating stage runs and how it is reached: the first fields of EvalConfig and AnswersConfig
    (declared once here; `build_backend` takes them)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        default="default",
        description="Model: default, HF folder, GGUF file, adapter folder, hub id (with backend hf); "
        "for the openai backend, the served model name.",
    )
    backend: BackendName = Field(default="auto", description=BACKEND_HELP.format(embedded="hf"))
    base_url: str | None = Field(default=None, description="openai backend: server URL (else $OPENAI_BASE_URL).")
    api_key_env: str = Field(
        default=DEFAULT_API_KEY_ENV, description="openai backend: environment variable holding the key."
    )
    server: ServerConfig | None = server_field()

    def open_backend(self, log: Path, concurrency: int, **options: Any) -> AbstractContextManager[Backend]:
        """The backend these settings name, closed on exit (see servers.stage_backend: with `server` set, the
        server is started, its output in `log`, and `concurrency` requests are sent at once)."""
        return stage_backend(
            self.model,
            self.backend,
            base_url=self.base_url,
            api_key_env=self.api_key_env,
            server=self.server,
            log=log,
            embedded="hf",
            concurrency=concurrency,
            **options,
        )


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
    raise ConfigError(f"unknown backend '{name}'; valid: {', '.join(BACKEND_CHOICES)}")


def infer_backend(
    model: str,
    backend: str = "auto",
    *,
    base_url: str | None = None,
    embedded: InProcess = "hf",
    server: ServerConfig | None = None,
) -> str:
    """The backend that runs `model`: `backend` itself unless it is 'auto'. Loads nothing.

    The rule for 'auto', in order:
      1. a base URL was given: openai (the model is a name on that server);
      2. the embedded 'default': `embedded`, the in-process backend the command picks for it (the
         commands that compare models with LoRA adapters pick hf, which runs adapters; the teacher
         and the judge pick llamacpp, ~4x faster here and able to constrain replies to a JSON schema);
      3. an existing .gguf file: llamacpp; an existing folder (HF model or LoRA adapter): hf; a spec
         that looks like a local path but exists nowhere (models.looks_like_path) the same way, so that
         it is reported as a missing folder or file rather than sent to a server;
      4. anything else (gpt-4, a hub id, a name on a server): openai. A hub id runs in-process
         with an explicit --backend hf.
    With a managed `server` the model is reached through it: openai.
    Raises ConfigError for an unknown backend name.
    """
    if server is not None:
        return "openai"
    if backend != "auto":
        if backend not in BACKENDS:
            raise ConfigError(f"unknown backend '{backend}'; valid: {', '.join(BACKEND_CHOICES)}")
        return backend
    from selfprompt.models import DEFAULT_MODEL

    if base_url:
        return "openai"
    if model == DEFAULT_MODEL:
        return embedded
    path = Path(model).expanduser()
    if path.is_file() and path.suffix.lower() == ".gguf":
        return "llamacpp"
    if path.is_dir():
        return "hf"
    from selfprompt.models import looks_like_path

    if looks_like_path(model):  # meant as a local path that is not there: in-process, which reports it missing
        return "llamacpp" if model.lower().endswith(".gguf") else "hf"
    return "openai"


def build_backend(
    model: str,
    backend: str = "auto",
    *,
    base_url: str | None = None,
    api_key_env: str | None = None,
    embedded: InProcess = "hf",
    **options: Any,
) -> Backend:
    """The client for `model`: the backend from `infer_backend`, with the options that backend takes.

    `options` are backend settings (batch_size for hf, timeout and concurrency for openai, ...); each
    backend ignores the ones it does not use. Raises ConfigError (unknown backend, no API key) and
    ModelNotFoundError (a local path that does not exist, a hub id that cannot be fetched).
    """
    name = infer_backend(model, backend, base_url=base_url, embedded=embedded)
    if name == "openai":
        options = {**options, "base_url": base_url, "api_key_env": api_key_env or DEFAULT_API_KEY_ENV}
        if backend == "auto" and not base_url:
            try:
                return get_backend(name, model=model, **options)
            except ConfigError as e:  # say why a name meant as a path ended up at a server
                raise ConfigError(
                    f"'{model}' is not the embedded default nor a local file or folder (from {Path.cwd()}), so "
                    f"backend auto sends it to an OpenAI-compatible server; {e}"
                ) from None
    return get_backend(name, model=model, **options)
