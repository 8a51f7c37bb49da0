"""Shared fixtures: the local data mirror, the embedded default model, a real llama.cpp server.

Everything here is real: the models run, the server is llama.cpp's OpenAI-compatible server
(from llama-cpp-python) on a loopback port. Fixtures are session-scoped because loading a model
costs seconds on 2 cores.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from selfprompt.generate.backends.base import Backend

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = Path(os.environ.get("SELFPROMPT_DATA_DIR", REPO.parent / "shared" / "data"))
    if not (path / "MANIFEST.json").exists():
        pytest.fail(f"data mirror not found at {path}; set SELFPROMPT_DATA_DIR")
    return path


@pytest.fixture(scope="session")
def default_model():
    """The resolved embedded default, already converted to its cached HF folder."""
    from selfprompt.models import resolve_model

    model = resolve_model("default")
    model.transformers_path()
    return model


@pytest.fixture(scope="session")
def hf_backend(default_model):
    from selfprompt.generate.backends import get_backend

    backend = get_backend("hf", model=default_model)
    yield backend
    backend.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, timeout: float = 120.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before answering {url}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


@contextlib.contextmanager
def background_server(cmd: list[str], ready_url: str, log: Path, timeout: float = 120.0, env: dict | None = None):
    """Start a server process, wait until `ready_url` answers, and always stop it afterwards."""
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for_http(ready_url, timeout=timeout, proc=proc)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def llama_server(default_model, tmp_path_factory):
    """llama.cpp's OpenAI-compatible server on loopback, serving the default model as 'default' (the package's
    ManagedServer, as a stage starts it). Yields its base URL."""
    pytest.importorskip("llama_cpp", reason="needs the llamacpp extra")
    from selfprompt.generate.servers import ManagedServer, ServerConfig

    log = tmp_path_factory.mktemp("llama_server") / "server.log"
    with ManagedServer(ServerConfig(preset="llamacpp", served_name="default", start_timeout=120), "default", log) as s:
        yield s.base_url


class CountingBackend(Backend):
    """A real backend, counting the requests that reach it (to prove a cache is used).

    close() closes the wrapped backend only with close_inner=True (a shared fixture's backend stays open)."""

    def __init__(self, inner: Backend, close_inner: bool = False):
        super().__init__()
        self.inner, self.requests, self.name, self.close_inner = inner, 0, inner.name, close_inner
        self.decisions = inner.decisions

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    def generate(self, requests):
        self.requests += len(requests)
        return self.inner.generate(requests)

    def close(self) -> None:
        if self.close_inner:
            self.inner.close()


class CountingHash:
    """The real sha256_file, counting the files it reads."""

    def __init__(self, real):
        self.real, self.calls = real, []

    def __call__(self, path, *args, **kwargs):
        self.calls.append(Path(path))
        return self.real(path, *args, **kwargs)
