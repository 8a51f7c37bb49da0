"""Manual roles (condition `manual-role`), one per task family, declared in roles.yaml.

The texts are read when used; the eval cache key holds a hash of the role a generation used and the
file's version, carried in ManualRole.version (see Condition.cache_prompts), so an edited role regenerates
exactly its generations.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml

from selfprompt.errors import ConfigError
from selfprompt.generate.conditions import ManualRole

ROLES_FILE = Path(str(resources.files("selfprompt.evaluate") / "roles.yaml"))


def _roles_file() -> dict:
    st = ROLES_FILE.stat()
    return _read(st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=4)
def _read(size: int, mtime_ns: int) -> dict:  # size and mtime: an edited file is read again
    return yaml.safe_load(ROLES_FILE.read_text(encoding="utf-8"))


def roles_version() -> str:
    return str(_roles_file()["version"])


def manual_role(family: str) -> ManualRole:
    families = _roles_file()["families"]
    if family not in families:
        raise ConfigError(f"no manual role for family '{family}'; valid: {', '.join(sorted(families))}")
    entry = families[family]
    return ManualRole(
        role_prompt=entry["role_prompt"].strip(), acceptance=entry["acceptance"].strip(), version=roles_version()
    )


def condition_files(conditions: list[str]) -> list[Path]:
    """The prompt files the named conditions read, with this roles file where one needs a manual role."""
    from selfprompt.generate.conditions import get_condition

    files = [f for c in conditions for f in get_condition(c).prompt_files()]
    return files + ([ROLES_FILE] if any(get_condition(c).needs_manual_role for c in conditions) else [])
