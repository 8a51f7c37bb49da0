"""Prompts as versioned data files: `selfprompt/prompts/<name>.yaml`, each with a `name` and a `version`.

Every prompt text that reaches a model lives in such a file, never in code, and the file's sha256
is part of the cache key of whatever the prompt produces (`PromptFile.id`). Editing a prompt
therefore regenerates exactly the outputs it feeds and nothing else.

A folder named by $SELFPROMPT_PROMPT_DIR may hold files of the same names that replace the
packaged ones (to try a prompt without editing the installed package); the cache keys follow
whichever file was read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from selfprompt.errors import DataError
from selfprompt.manifest import sha256_text

PROMPT_DIR_ENV = "SELFPROMPT_PROMPT_DIR"


@dataclass(frozen=True)
class PromptFile:
    name: str
    version: str
    path: str
    sha256: str  # of the file's text
    data: dict[str, Any]  # the whole YAML document

    @property
    def id(self) -> str:
        """`name-vVERSION@sha256[:16]`: what caches and manifests record."""
        return f"{self.name}-v{self.version}@{self.sha256[:16]}"


def prompt_path(name: str) -> Path:
    """The file `load_prompt(name)` reads: $SELFPROMPT_PROMPT_DIR/<name>.yaml if present, else the packaged one."""
    override = os.environ.get(PROMPT_DIR_ENV)
    if override:
        candidate = Path(override).expanduser() / f"{name}.yaml"
        if candidate.is_file():
            return candidate
    return Path(str(resources.files("selfprompt.prompts") / f"{name}.yaml"))


def load_prompt(name: str) -> PromptFile:
    """Read and check a prompt file. Raises DataError (file, field) for a missing file or a bad header."""
    path = prompt_path(name)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise DataError(str(path), None, None, f"prompt file '{name}' not found") from None
    return _load(str(path), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=32)
def _load(path: str, size: int, mtime_ns: int) -> PromptFile:  # size and mtime: a changed file is read again
    text = Path(path).read_text(encoding="utf-8-sig")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise DataError(path, None if mark is None else mark.line + 1, None, f"invalid YAML: {e}") from None
    if not isinstance(data, dict):
        raise DataError(path, None, None, "expected a YAML mapping with 'name' and 'version'")
    for field in ("name", "version"):
        if not isinstance(data.get(field), (str, int)) or not str(data[field]).strip():
            raise DataError(path, None, field, "missing or empty")
    return PromptFile(
        name=str(data["name"]), version=str(data["version"]), path=path, sha256=sha256_text(text), data=data
    )


def text_field(prompt: PromptFile, *keys: str) -> str:
    """A text inside the prompt file, e.g. text_field(p, "styles", "tags", "feedback"); DataError if absent."""
    node: Any = prompt.data
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    if not isinstance(node, str) or not node:
        raise DataError(prompt.path, None, ".".join(keys), "missing or not a text")
    return node
