"""Inference servers a stage starts for its own model, uses through the openai backend, and stops.

A generating stage (annotate, eval, judge answers, judge) with a `server` setting does not load its model:
it starts the server command for it on a free loopback port, waits until the health check answers, sends
its requests concurrently to `http://127.0.0.1:PORT/v1`, and stops the server when it ends, fails, is
interrupted or is killed (see selfprompt.generate.supervise: the server runs in its own process group under
a watchdog that dies with the stage). The server's output goes to the stage folder's `server.log`.

    server: vllm                                            a preset
    server: {preset: vllm, args: [--data-parallel-size, "8"]}   a preset plus arguments
    server: {command: [my-server, --model, "{model}", --port, "{port}"], health: /health, prefill: false}

Presets (PRESETS): `vllm` (vllm serve), `llamacpp` (llama-cpp-python's `python -m llama_cpp.server`),
`selfprompt` (`selfprompt serve`). Placeholders in a command (PLACEHOLDERS): {model} the folder transformers
or vLLM loads (an adapter's base; a GGUF is converted once), {gguf} the GGUF file, {spec} the model as given,
{lora} / {lora_name} / {lora_rank} the LoRA adapter folder, its served name and rank, {served_name}, {host},
{port}, {python} (this interpreter), {threads} (CPU cores).

What an engine can do decides what runs on it, before anything starts (check_prefill, and a LoRA adapter
on an engine without adapter support): a request with an assistant prefill (self-prompt-no-role, the eval
trigger pass, icl-self-prompt's role opener) needs continue_final_message (vLLM has it; llama.cpp's python
server renders the prefill as a finished turn and opens a new one, `selfprompt serve` takes only a role).
A refused setting is a ConfigError; nothing runs silently wrong.

Generations through a managed server are keyed by the served model's content and the server command (not by
the random port), so a stage killed and rerun resumes from its cached generations.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from selfprompt.errors import ConfigError, SelfPromptError
from selfprompt.models import DEFAULT_MODEL

if TYPE_CHECKING:
    from selfprompt.generate.backends.base import Backend
    from selfprompt.models import ResolvedModel

SERVER_LOG = "server.log"
LOOPBACK = "127.0.0.1"
LOG_TAIL_LINES = 20
PLACEHOLDERS = ("model", "gguf", "spec", "lora", "lora_name", "lora_rank", "served_name", "host", "port", "python")
PLACEHOLDERS += ("threads",)
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
# A placeholder's name with braces around it other than exactly one on each side ("{model", "port}", "{{model}}",
# "{model}}", "{ model }"): `fill` would send the extra or missing braces and spaces to the server as literal text
# ("{{port}}" becomes "{8000}", not "{port}"). Only the names above are checked, and a name in quotes has no brace
# next to it, so JSON arguments ('{"level": 3}', '{"port": 1}') stay valid.
_BRACED_WORD = re.compile(r"(\{*)[ \t]*(?<!\w)(\w+)(?!\w)[ \t]*(\}*)")


class ServerStartError(SelfPromptError):
    """A managed server exited or did not answer its health check in time; the message ends with its log tail."""


@dataclass(frozen=True)
class ServerPreset:
    """A known engine: its command, health check and what it can do."""

    name: str
    command: tuple[str, ...]
    health: str
    prefill: bool  # continues a final assistant message (continue_final_message)
    whole_text: bool  # the reply is the model's whole text (selfprompt serve splits the role off)
    lora_args: tuple[str, ...] | None  # added for a LoRA adapter; None: adapters are refused
    description: str


PRESETS: dict[str, ServerPreset] = {
    p.name: p
    for p in (
        ServerPreset(
            "vllm",
            (
                "vllm",
                "serve",
                "{model}",
                "--host",
                "{host}",
                "--port",
                "{port}",
                "--served-model-name",
                "{served_name}",
            ),
            health="/health",
            prefill=True,
            whole_text=True,
            lora_args=("--enable-lora", "--lora-modules", "{lora_name}={lora}", "--max-lora-rank", "{lora_rank}"),
            description="vLLM's OpenAI-compatible server (GPU); LoRA adapters served with --enable-lora",
        ),
        ServerPreset(
            "llamacpp",
            (
                "{python}",
                "-m",
                "llama_cpp.server",
                "--model",
                "{gguf}",
                "--model_alias",
                "{served_name}",
                "--host",
                "{host}",
                "--port",
                "{port}",
                "--n_ctx",
                "4096",
                "--n_threads",
                "{threads}",
            ),
            health="/v1/models",
            prefill=False,
            whole_text=True,
            lora_args=None,
            description="llama-cpp-python's server on a GGUF file (CPU); no prefill, no adapters",
        ),
        ServerPreset(
            "selfprompt",
            (
                "{python}",
                "-c",
                "from selfprompt.cli import main; main()",
                "serve",
                "--model",
                "{spec}",
                "--host",
                "{host}",
                "--port",
                "{port}",
                "--served-name",
                "{served_name}",
            ),
            health="/health",
            prefill=False,
            whole_text=False,
            lora_args=(),  # runs an adapter folder as given
            description="`selfprompt serve` (answers without the role; only a role can be prefilled)",
        ),
    )
}


def get_preset(name: str) -> ServerPreset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown server preset '{name}'; valid: {', '.join(PRESETS)}") from None


class ServerConfig(BaseModel):
    """The `server` setting of a generating stage: `server: vllm`, or a mapping of these fields."""

    # A YAML list such as [sleep, 300] holds a number: it is a word of the command all the same.
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    preset: str | None = Field(default=None, description="vllm | llamacpp | selfprompt: command, health and abilities.")
    command: list[str] | None = Field(
        default=None, description="Command template instead of a preset's, with {placeholders} ({port} required)."
    )
    args: list[str] = Field(default_factory=list, description="Arguments added to the command (e.g. vLLM flags).")
    health: str | None = Field(
        default=None, description="Health check: a path on the server or a URL; ready when it answers 200."
    )
    start_timeout: float = Field(default=900.0, gt=0, description="Seconds to wait for the health check.")
    stop_timeout: float = Field(default=30.0, ge=0, description="Seconds between SIGTERM and SIGKILL when stopping.")
    served_name: str = Field(default="selfprompt-model", description="Model name on the server.")
    prefill: bool | None = Field(
        default=None, description="Whether the server continues a final assistant message (default: the preset's)."
    )
    lora_args: list[str] | None = Field(
        default=None, description="Arguments added for a LoRA adapter (default: the preset's; none: refused)."
    )

    @model_validator(mode="before")
    @classmethod
    def _preset_name(cls, value: Any) -> Any:
        return {"preset": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check(self) -> ServerConfig:
        if self.preset is None and not self.command:
            raise ValueError(f"give a preset ({', '.join(PRESETS)}) or a command")
        if self.preset is not None and self.preset not in PRESETS:
            raise ValueError(f"unknown server preset '{self.preset}'; valid: {', '.join(PRESETS)}")
        for word in self.template() + list(self.adapter_args() or ()):
            for name in _PLACEHOLDER.findall(word):
                if name not in PLACEHOLDERS:
                    raise ValueError(f"unknown placeholder {{{name}}} in '{word}'; valid: {', '.join(PLACEHOLDERS)}")
            for braced in _BRACED_WORD.finditer(word):
                opened, name, closed = braced.groups()
                if name in PLACEHOLDERS and (opened or closed) and braced.group(0) != f"{{{name}}}":
                    raise ValueError(f"malformed placeholder '{braced.group(0).strip()}' in '{word}': write {{{name}}}")
        if not any("{port}" in w for w in self.template()):
            raise ValueError("the command must take {port}: the port is picked free at start")
        return self

    @property
    def base(self) -> ServerPreset | None:
        return PRESETS[self.preset] if self.preset else None

    @property
    def label(self) -> str:
        return self.preset or "command"

    def template(self) -> list[str]:
        """The command with its placeholders (the preset's or `command`, then `args`)."""
        command = self.command or list(self.base.command if self.base else ())
        return [*command, *self.args]

    def adapter_args(self) -> list[str] | None:
        if self.lora_args is not None:
            return self.lora_args
        return list(self.base.lora_args) if self.base and self.base.lora_args is not None else None

    @property
    def can_prefill(self) -> bool:
        return self.prefill if self.prefill is not None else bool(self.base and self.base.prefill)

    @property
    def whole_text(self) -> bool:
        return self.base.whole_text if self.base else True

    @property
    def health_check(self) -> str:
        return self.health or (self.base.health if self.base else "/v1/models")

    def fingerprint(self) -> str:
        """What decides the server's outputs besides the model: the command templates (no port, no host)."""
        blob = json.dumps({"command": self.template(), "lora": self.adapter_args()}, sort_keys=True)
        return f"{self.label}:{hashlib.sha256(blob.encode()).hexdigest()[:8]}"


def server_field() -> Any:
    """The `server` field of a stage config (declared here once; AnnotateConfig, EvalConfig, AnswersConfig and
    JudgeConfig carry it). On the command line `--server vllm` or `--server '{preset: vllm, args: [...]}'`."""
    return Field(
        default=None,
        description="Start this inference server for the model and send the requests to it: a preset (vllm, "
        "llamacpp, selfprompt) or a mapping {preset|command, args, health, start_timeout, ...}; see docs/serving.md.",
        json_schema_extra={"cli": {"parse": _parse_server}},
    )


def _parse_server(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"--server: not a preset name nor a YAML mapping ({e})") from None


# ---------------------------------------------------------------------------------------------
# Checks made before anything runs


def check_served(server: ServerConfig, backend: str, base_url: str | None, field: str = "model") -> None:
    """A managed server replaces the backend: backend must be auto or openai and base_url unset."""
    if backend not in ("auto", "openai"):
        raise ConfigError(f"server {server.label} serves the {field}: backend must be auto or openai, not {backend}")
    if base_url:
        raise ConfigError(f"server {server.label} picks its own URL: give base_url or server, not both")


def check_prefill(server: ServerConfig | None, needs: dict[str, str]) -> None:
    """Refuse requests the server would answer wrongly. `needs` maps what needs an ability to the ability:
    "prefill" (a continued assistant message) or "whole_text" (the reply must keep the role)."""
    if server is None:
        return
    for what, ability in needs.items():
        if ability == "prefill" and not server.can_prefill:
            raise ConfigError(
                f"{what} needs an assistant prefill, which server {server.label} cannot continue (it would answer "
                "in a new turn); use server vllm (continue_final_message), or an in-process backend"
                + (", or no_trigger with regex extractors" if "trigger" in what else "")
            )
        if ability == "whole_text" and not server.whole_text:
            raise ConfigError(
                f"{what} reads the role from the model's text, which server {server.label} splits off; "
                "use server vllm or llamacpp, or an in-process backend"
            )


def condition_needs(condition: str) -> dict[str, str]:
    """What a condition's requests need of a server (see check_prefill)."""
    from selfprompt.format import DEFAULT_FORMAT
    from selfprompt.generate.backends.base import Sampling
    from selfprompt.generate.conditions import get_condition

    cond = get_condition(condition)
    needs: dict[str, str] = {}
    role = cond.role_request("?", Sampling())
    if cond.answer_prefix(DEFAULT_FORMAT) or (role is not None and role.assistant_prefix):
        needs[f"condition {condition}"] = "prefill"
    elif cond.parses_format:
        needs[f"condition {condition}"] = "whole_text"
    return needs


# ---------------------------------------------------------------------------------------------
# The command


def free_port(host: str = LOOPBACK) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _adapter_rank(folder: str) -> str:
    try:
        return str(json.loads((Path(folder) / "adapter_config.json").read_text())["r"])
    except (OSError, KeyError, ValueError):
        return "16"


def placeholder_values(model: ResolvedModel, server: ServerConfig, host: str, port: int | str) -> dict[str, Any]:
    """Placeholder -> value, computed when used (a GGUF is converted only for {model})."""
    adapter = model.adapter_path if model.kind == "adapter" else None
    # An engine that serves the adapter beside its base (vLLM's --lora-modules) needs two names; requests
    # go to the adapter's, which is served_name.
    beside = adapter and any("{lora_name}" in w for w in server.adapter_args() or ())
    base_name = f"{server.served_name}-base" if beside else server.served_name
    return {
        "model": lambda: model.transformers_path(),
        "gguf": lambda: model.require_gguf(),
        # The embedded default by its name: `selfprompt serve` then picks its in-process engine as for a user.
        "spec": lambda: (
            model.spec
            if model.spec == DEFAULT_MODEL
            else (model.adapter_path or model.hf_path or model.gguf_path or model.spec)
        ),
        "lora": lambda: adapter,
        "lora_name": lambda: server.served_name,
        "lora_rank": lambda: _adapter_rank(adapter) if adapter else None,
        "served_name": lambda: base_name,
        "host": lambda: host,
        "port": lambda: str(port),
        "python": lambda: sys.executable,
        "threads": lambda: str(os.cpu_count() or 2),
    }


def fill(words: list[str], values: dict[str, Any]) -> list[str]:
    cache: dict[str, str] = {}

    def value(match: re.Match) -> str:
        name = match.group(1)
        if name not in cache:
            got = values[name]()
            if got is None:
                raise ConfigError(f"placeholder {{{name}}} has no value for this model")
            cache[name] = str(got)
        return cache[name]

    return [_PLACEHOLDER.sub(value, w) for w in words]


def server_command(model: ResolvedModel, server: ServerConfig, host: str, port: int | str) -> list[str]:
    """The command that serves `model`; a LoRA adapter adds the adapter arguments or is refused."""
    words = server.template()
    if model.kind == "adapter":
        extra = server.adapter_args()
        if extra is None:
            raise ConfigError(
                f"server {server.label} cannot serve the LoRA adapter {model.adapter_path}: merge it first "
                f"(selfprompt merge {model.adapter_path} --out FOLDER) and serve that folder, or use server vllm"
            )
        words = [*words, *extra]
    return fill(words, placeholder_values(model, server, host, port))


def describe_command(server: ServerConfig, model: str) -> str:
    """The command for --dry-run: {port} stays a placeholder; an existing model fills the rest, another one is
    shown as written (e.g. a train stage's folder that does not exist yet)."""
    from selfprompt.models import resolve_model

    try:
        if Path(model).expanduser().exists() or model == "default":
            return shlex.join(server_command(resolve_model(model), server, LOOPBACK, "{port}"))
    except SelfPromptError:
        pass
    values: dict[str, Any] = {n: (lambda n=n: "{" + n + "}") for n in PLACEHOLDERS}  # unknown until it runs
    values.update(
        model=lambda: model,
        gguf=lambda: model,
        spec=lambda: model,
        served_name=lambda: server.served_name,
        host=lambda: LOOPBACK,
        python=lambda: sys.executable,
    )
    shown = fill(server.template(), values)
    adapter = server.adapter_args()
    lora = f"  (a LoRA adapter adds: {shlex.join(adapter)})" if adapter else ""
    return shlex.join(shown) + lora


# ---------------------------------------------------------------------------------------------
# Running it


class ManagedServer:
    """One server process for one stage, as a context manager: started and healthy on entry, stopped on exit.

    The command runs under the watchdog (selfprompt.generate.supervise) with its output appended to `log`.
    Raises ConfigError (a command for a model it cannot serve), ModelNotFoundError, and ServerStartError
    (exited early, or no healthy answer within start_timeout seconds; the message ends with the log tail)."""

    def __init__(self, server: ServerConfig, model: str, log: Path, host: str = LOOPBACK):
        from selfprompt.models import resolve_model

        self.server, self.log, self.host = server, Path(log), host
        self.model = resolve_model(model)
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.log_start = 0  # where this start's lines begin in the (appended) log

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def served_model(self) -> str:
        """The name requests use: the adapter's for a LoRA adapter, else the model's."""
        return self.server.served_name

    @property
    def model_id(self) -> str:
        """The content id of what the server generates with: model content + server command (no port)."""
        return f"{self.model.model_id}~{self.server.fingerprint()}"

    def health_url(self) -> str:
        check = self.server.health_check
        if check.startswith(("http://", "https://")):
            return check.replace("{port}", str(self.port)).replace("{host}", self.host)
        return f"http://{self.host}:{self.port}/{check.lstrip('/')}"

    def start(self) -> ManagedServer:
        self.port = free_port(self.host)
        command = server_command(self.model, self.server, self.host, self.port)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("a", encoding="utf-8") as out:
            self.log_start = out.tell()
            out.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {shlex.join(command)}\n")
            out.flush()
            watchdog = [sys.executable, "-m", "selfprompt.generate.supervise", str(os.getpid())]
            self.proc = subprocess.Popen(
                [*watchdog, str(self.server.stop_timeout), "--", *command],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_healthy(self) -> None:
        import httpx

        assert self.proc is not None
        url = self.health_url()
        deadline = time.monotonic() + self.server.start_timeout
        while True:
            if self.proc.poll() is not None:
                raise ServerStartError(
                    f"server {self.server.label} exited (code {self.proc.returncode}) before {url} answered; "
                    + self.log_tail()
                )
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() >= deadline:
                raise ServerStartError(
                    f"server {self.server.label} did not answer {url} within {self.server.start_timeout:g}s; "
                    + self.log_tail()
                )
            time.sleep(0.5)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:  # this start's lines only: the log keeps earlier runs' above them
            with self.log.open("rb") as f:
                f.seek(self.log_start)
                tail = f.read().decode("utf-8", errors="replace").splitlines()[-lines:]
        except OSError:
            tail = []
        return f"last {len(tail)} lines of {self.log}:\n" + "\n".join(tail)

    def stop(self) -> None:
        """Stop the server and everything it started (the watchdog's SIGTERM, then SIGKILL)."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=self.server.stop_timeout + 10)
        except subprocess.TimeoutExpired:
            proc.kill()  # the server then gets SIGKILL from its own death signal
            proc.wait()

    def __enter__(self) -> ManagedServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def served_backend(running: ManagedServer, **options: Any) -> Backend:
    """The openai backend talking to a running ManagedServer, identified by the served model's content."""
    from selfprompt.generate.backends.openai_compat import OpenAIBackend

    class ServedBackend(OpenAIBackend):
        @property
        def model_id(self) -> str:
            return running.model_id

    options = {"timeout": 600.0, **options}
    return ServedBackend(model=running.served_model, base_url=running.base_url, **options)


@contextlib.contextmanager
def stage_backend(
    model: str,
    backend: str,
    *,
    base_url: str | None,
    api_key_env: str | None,
    server: ServerConfig | None,
    log: Path,
    embedded: str = "hf",
    concurrency: int = 8,
    **options: Any,
) -> Iterator[Backend]:
    """The backend a stage generates with, closed (and its server stopped) on exit: a managed server's when
    `server` is set (log: its server log), else build_backend's."""
    from selfprompt.generate.backends import build_backend

    if server is None:
        engine = build_backend(
            model,
            backend,
            base_url=base_url,
            api_key_env=api_key_env,
            embedded=embedded,
            **options,  # type: ignore[arg-type]
        )
        try:
            yield engine
        finally:
            engine.close()
        return
    import openai

    check_served(server, backend, base_url)
    with ManagedServer(server, model, log) as running:
        engine = served_backend(running, concurrency=concurrency, timeout=options.get("timeout", 600.0))
        try:
            yield engine
        except openai.APIError as e:  # it answered its health check, then refused or failed the stage's requests
            raise SelfPromptError(
                f"server {server.label} failed a request of this stage ({type(e).__name__}: {e}); " + running.log_tail()
            ) from None
        finally:
            engine.close()
