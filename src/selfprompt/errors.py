"""Errors a user can act on. Each names what to fix; the CLI prints them without a traceback."""

from __future__ import annotations


class SelfPromptError(Exception):
    """Base class for errors shown to the user as one clear message."""


class DataError(SelfPromptError):
    """Bad input data. Always names the file, the line (1-based) and the field."""

    def __init__(self, path: str, line: int | None, field: str | None, message: str):
        self.path, self.line, self.field, self.detail = str(path), line, field, message
        where = self.path if line is None else f"{self.path}:{line}"
        if field:
            where += f": field '{field}'"
        super().__init__(f"{where}: {message}")


def error_field(error: dict) -> str:
    """The field one of pydantic's errors (`ValidationError.errors()[k]`) is about, dotted: 'train.lr',
    'rows.0.role'; '' for the value as a whole."""
    return ".".join(str(part) for part in error["loc"])


class ModelNotFoundError(SelfPromptError):
    """A model name that resolves to nothing usable."""


class ConfigError(SelfPromptError):
    """A bad configuration value or an unknown registry name."""


class ServiceStopped(SelfPromptError):
    """A model server refused work no retry can fix (exhausted quota, bad key); rerunning once fixed resumes."""
