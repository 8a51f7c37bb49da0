"""Run manifests: what produced a number (config, versions, git commit, data hashes, seed)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from selfprompt.hardware import machine_facts
from selfprompt.jsonl import write_json

TRACKED_PACKAGES = (
    "selfprompt",
    "torch",
    "transformers",
    "peft",
    "trl",
    "accelerate",
    "datasets",
    "openai",
    "llama_cpp_python",
    "numpy",
    "pydantic",
)
MANIFEST_NAME = "manifest.json"


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def git_commit(cwd: str | Path | None = None) -> str | None:
    """The commit of the selfprompt checkout (with '+dirty' when it has local changes)."""
    cwd = cwd or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=cwd, capture_output=True, text=True, timeout=10)
        return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def build_manifest(
    *,
    stage: str,
    config: dict[str, Any],
    data_files: Iterable[str | Path] = (),
    seed: int | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "stage": stage,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": sys.argv,
        "config": config,
        "seed": seed,
        "data": {str(p): sha256_file(p) for p in data_files},
        "versions": package_versions(),
        "git_commit": git_commit(),
        "platform": platform.platform(),
        "hardware": machine_facts(),
        **(extra or {}),
    }


def write_manifest(out_dir: str | Path, **kwargs: Any) -> Path:
    """Write manifest.json into out_dir (see build_manifest for the arguments)."""
    path = Path(out_dir) / MANIFEST_NAME
    write_json(path, build_manifest(**kwargs))
    return path
