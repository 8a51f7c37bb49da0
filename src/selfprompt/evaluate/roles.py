"""Manual roles (condition `manual-role`), one per task family, declared in roles.yaml."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import yaml

from selfprompt.errors import ConfigError
from selfprompt.generate.conditions import ManualRole


@lru_cache(maxsize=1)
def _roles_file() -> dict:
    return yaml.safe_load((resources.files("selfprompt.evaluate") / "roles.yaml").read_text(encoding="utf-8"))


def roles_version() -> str:
    return str(_roles_file()["version"])


def manual_role(family: str) -> ManualRole:
    families = _roles_file()["families"]
    if family not in families:
        raise ConfigError(f"no manual role for family '{family}'; valid: {', '.join(sorted(families))}")
    entry = families[family]
    return ManualRole(role_prompt=entry["role_prompt"].strip(), acceptance=entry["acceptance"].strip())
