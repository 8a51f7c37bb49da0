"""Command-line options made from a stage's pydantic config: each knob is declared once, as a field.

A stage config (AnnotateConfig, EvalConfig, AnswersConfig, JudgeConfig) is a pydantic model with a
description on every field. `config_command` turns it into a typer command: one option per field
(name `--field-name` unless the field says otherwise, the field's type and default, help = its
description), plus

    --config FILE     a YAML mapping of field: value (an experiment section is the same mapping)
    key=value ...     overrides, values read as YAML (`limit=4`, `tasks=[gsm8k]`); options and key=value
                      words may come in any order

Precedence: the field's default < --config FILE < options given on the command line < key=value.
An unknown key, or a bad or missing value, is a ConfigError naming the key and where it came from.
An empty value (`limit=`, `--base-url ""`, `teacher: ""`) means None for a setting that may be None
(`empty_value`), and is refused for any other: an empty model name or output path is never meant.

A field may carry `json_schema_extra={"cli": {...}}` to keep a flag name that differs from the field
name (`flags`), to read a list from one comma-separated value (`split: ","`) or from a repeated
option (`repeat: True`), or to read the text with its own parser (`parse`).
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

import typer
import typer.core
import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticUndefined
from typer._click import exceptions as click_exceptions  # typer vendors click; its exceptions are not re-exported

from selfprompt.errors import ConfigError, error_field

C = TypeVar("C", bound=BaseModel)
OVERRIDES_META = "selfprompt.overrides"  # ctx.meta key: key=value words a group found in place of a subcommand
RESERVED = ("ctx", "config_file", "overrides")


# ---------------------------------------------------------------------------------------------
# Reading a config: file, options, overrides


def parse_override(item: str) -> tuple[str, Any]:
    """'limit=4' -> ('limit', 4): the value is read as YAML; an empty value is the empty string (see
    empty_value for what it means)."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override '{item}' is not key=value (e.g. limit=4)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"override '{item}': the value is not valid YAML ({e})") from None
    return key.strip(), value


def is_empty(value: Any) -> bool:
    """An empty value: the empty string or only blanks (`key=`, `--key ""`, `key: ""`)."""
    return isinstance(value, str) and not value.strip()


def empty_value(model: type[BaseModel], key: str, source: str) -> None:
    """What an empty value of `key` means: None where the field allows None; else a ConfigError naming the key
    and its source (`source`), since an empty name, path or number is never what a user meant."""
    field = model.model_fields[key]
    if allows_none(field.annotation):
        return None
    if field.is_required():
        hint = "give a value"
    else:
        default = _default(field)
        hint = f"give a value, or leave it out for its default ({default!r})"
        if _is_list(field.annotation):
            hint += "; [] is an empty list"
    raise ConfigError(f"{source}: '{key}' is empty: {hint}")


def allows_none(annotation: Any) -> bool:
    """Whether a field of this annotation may be None."""
    return annotation is None or annotation is type(None) or type(None) in typing.get_args(annotation)


def check_config_path(path: str | Path, what: str = "config file") -> Path:
    """`path` as a Path when it is a file; else a ConfigError saying it is missing or a folder."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"{what} '{p}' is a folder, not a YAML file")
    if not p.is_file():
        raise ConfigError(f"{what} '{p}' not found")
    return p


def read_config_file(path: str | Path) -> dict[str, Any]:
    p = check_config_path(path)
    try:
        loaded = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: invalid YAML ({e})") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{p}: expected a mapping of key: value")
    return loaded


def load_stage_config(
    model: type[C],
    path: str | Path | None = None,
    options: dict[str, Any] | None = None,
    overrides: list[str] | tuple[str, ...] = (),
) -> C:
    """The config from its defaults, a YAML file, explicit options and key=value overrides, in that order.

    Raises ConfigError naming the key and its source: an unknown key (with the valid ones), a bad value,
    or a required field nobody gave (with the option that sets it).
    """
    raw: dict[str, Any] = {}
    source: dict[str, str] = {}
    if path:
        for key, value in read_config_file(path).items():
            raw[key], source[key] = value, str(path)
    for key, value in (options or {}).items():
        raw[key], source[key] = value, f"option {flag_names(model, key)[0]}"
    for item in overrides:
        key, value = parse_override(item)
        raw[key], source[key] = value, f"override '{item}'"
    unknown = [k for k in raw if k not in model.model_fields]
    if unknown:
        raise ConfigError(
            f"{source[unknown[0]]}: unknown key '{unknown[0]}'; valid keys: {', '.join(model.model_fields)}"
        )
    for key, value in raw.items():
        if is_empty(value):
            raw[key] = empty_value(model, key, source[key])
    for key, value in raw.items():  # `tasks=gsm8k,mmlu` or `tasks: gsm8k` for a list field: its comma-separated items
        if isinstance(value, str) and _is_list(model.model_fields[key].annotation):
            raw[key] = [v.strip() for v in value.split(",") if v.strip()]
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        key = str(first["loc"][0]) if first["loc"] else ""
        if first["type"] == "missing":
            raise ConfigError(
                f"missing '{key}': give {flag_names(model, key)[0]} VALUE, {key}=VALUE, or "
                f"'{key}:' in the --config file"
            ) from None
        where = source.get(key, "value")
        path_text = error_field(first)
        raise ConfigError(f"{where}: invalid value for '{path_text}': {first['msg']}") from None


def _is_list(annotation: Any) -> bool:
    annotation = _unwrap_optional(annotation)
    return typing.get_origin(annotation) is list or annotation is list


# ---------------------------------------------------------------------------------------------
# Building the command


def _cli(field: Any) -> dict[str, Any]:
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    return dict(extra.get("cli") or {})


def flag_names(model: type[BaseModel], name: str) -> list[str]:
    """The option names of a field: its own `cli.flags`, else `--field-name`."""
    field = model.model_fields.get(name)
    flags = _cli(field).get("flags") if field is not None else None
    return list(flags) if flags else ["--" + name.replace("_", "-")]


def _unwrap_optional(annotation: Any) -> Any:
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0] if len(rest) == 1 else str
    return annotation


def _default(field: Any) -> Any:
    if field.default_factory is not None:
        return field.default_factory()
    return None if field.default is PydanticUndefined else field.default


def _option(name: str, field: Any, model: type[BaseModel]) -> tuple[Any, Any, Callable[[Any], Any]]:
    """(python type, typer.Option, converter from the option's value to the field's value)."""
    cli = _cli(field)
    base = _unwrap_optional(field.annotation)
    origin = typing.get_origin(base)
    default = _default(field)
    help_text = field.description or ""
    flags = flag_names(model, name)
    if "parse" in cli:  # text read by the field's own parser (e.g. a field map); its default is the field's
        return str | None, typer.Option(None, *flags, help=help_text), cli["parse"]
    if origin is list and cli.get("repeat"):
        return list[str], typer.Option(list(default or []), *flags, help=help_text), list
    if origin is list:  # one comma-separated value
        sep = cli.get("split", ",")
        shown = sep.join(str(v) for v in default) if default else None
        return (
            str | None,
            typer.Option(shown, *flags, help=help_text),
            (lambda text, sep=sep: [v.strip() for v in text.split(sep) if v.strip()]),
        )
    if base is bool:
        return bool, typer.Option(bool(default), *flags, help=help_text), bool
    if base in (int, float):
        return base | None, typer.Option(default, *flags, help=help_text), lambda v: v
    if origin is Literal:
        choices = " | ".join(str(c) for c in typing.get_args(base))
        shown = help_text if choices in help_text else f"{help_text} ({choices})"
        return str | None, typer.Option(default, *flags, help=shown), lambda v: v
    shown = str(default) if isinstance(default, Path) else default
    return str | None, typer.Option(shown, *flags, help=help_text), lambda v: v


def config_command(
    model: type[C],
    run: Callable[..., Any],
    *,
    extra: list[inspect.Parameter] = (),
    positional_overrides: bool = True,
    doc: str | None = None,
) -> Callable[..., Any]:
    """A typer command function for `model`: one option per field, --config FILE and key=value overrides.

    `run(config, ctx, **extra_values)` is called with the validated config. `extra` are CLI-only
    parameters (typer.Option defaults), passed to `run` by name. With `positional_overrides=False`
    (a command group, whose positional words are subcommands) key=value words are read from
    ctx.meta[OVERRIDES_META], where `OverridesGroup` puts them.
    """
    params = [inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)]
    annotations: dict[str, Any] = {"ctx": typer.Context}
    for name, field in model.model_fields.items():
        if name in RESERVED:
            raise ValueError(f"{model.__name__}.{name}: the name is reserved by the command line")
        annotation, option, _ = _option(name, field, model)
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation))
        annotations[name] = annotation
    params.append(
        inspect.Parameter(
            "config_file",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=Path | None,
            default=typer.Option(
                None,
                "--config",
                "-c",
                help="YAML file of settings (the keys are the option names "
                "with _ for -); options and key=value overrides come after it.",
            ),
        )
    )
    annotations["config_file"] = Path | None
    if positional_overrides:
        params.append(
            inspect.Parameter(
                "overrides",
                inspect.Parameter.KEYWORD_ONLY,
                annotation=list[str] | None,
                default=typer.Argument(
                    None,
                    help="key=value overrides of any setting (value read as YAML), e.g. limit=4 max_tokens=64.",
                    show_default=False,
                ),
            )
        )
        annotations["overrides"] = list[str] | None
    extra_names = []
    for p in extra:
        params.append(p.replace(kind=inspect.Parameter.KEYWORD_ONLY))
        annotations[p.name] = p.annotation
        extra_names.append(p.name)

    def command(ctx: typer.Context, **values: Any) -> Any:
        if ctx.invoked_subcommand is not None:
            return None
        config = config_from_context(model, ctx, values)
        return run(config, ctx, **{n: values[n] for n in extra_names})

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = annotations
    command.__doc__ = doc or run.__doc__
    command.__name__ = getattr(run, "__name__", "command")
    return command


def config_from_context(model: type[C], ctx: Any, values: dict[str, Any] | None = None) -> C:
    """The config a parsed command line stands for (ctx from config_command's command; values default to
    ctx.params): the --config file, the options the user gave, then the key=value overrides."""
    values = ctx.params if values is None else values
    explicit = {}
    for name, field in model.model_fields.items():
        if _given(ctx, name):
            value = values[name]
            # An empty text goes as it is (not through the converter: a list's would make it []), so that
            # load_stage_config gives it one meaning for options, files and overrides alike.
            explicit[name] = value if value is None or is_empty(value) else _option(name, field, model)[2](value)
    overrides = list(values.get("overrides") or []) + list(ctx.meta.get(OVERRIDES_META, []))
    return load_stage_config(model, values.get("config_file"), explicit, overrides)


def _given(ctx: typer.Context, name: str) -> bool:
    """True when the user set the option (command line or environment), not when it has its default."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT")


def _is_override(word: str) -> bool:
    return "=" in word and not word.startswith("-")


class OverridesGroup(typer.core.TyperGroup):
    """A command group whose own command also takes key=value overrides, before, between or after its options.

    A group's first positional word names a subcommand, and a group parses its options only up to that word
    (what follows is the subcommand's). A key=value word there names no subcommand: then the group's own
    command runs, and its options are read wherever they stand, as a plain command's are; the key=value
    words are handed to it as overrides.
    """

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        try:  # a dry run of the parser (pure): which positional word comes first?
            _, rest, _ = self.make_parser(ctx).parse_args(args=list(args))
        except click_exceptions.UsageError:
            rest = []  # the real parse below reports it
        if rest and _is_override(rest[0]):
            ctx.allow_interspersed_args = True  # no subcommand: options anywhere
        return super().parse_args(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        words = [*ctx._protected_args, *ctx.args]
        if words and _is_override(words[0]):
            bad = [w for w in words if not _is_override(w)]
            if bad:
                ctx.fail(f"'{bad[0]}' is not a key=value override (a subcommand comes first, before its options)")
            ctx.meta[OVERRIDES_META] = words
            ctx._protected_args, ctx.args = [], []
        return super().invoke(ctx)
