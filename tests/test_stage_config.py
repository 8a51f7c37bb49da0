"""One declaration per knob: every field of every stage config can be set from the command line and from an
experiment file, and both give the same default. Only the parse paths run here: no model is loaded.
"""

from __future__ import annotations

import json
import re
import typing
from pathlib import Path
from typing import Any, Literal

import pytest
import typer
from pydantic import BaseModel

from selfprompt.cli import app
from selfprompt.cliconfig import config_from_context, flag_names, load_stage_config
from selfprompt.errors import ConfigError, SelfPromptError
from selfprompt.experiment.runner import plan
from selfprompt.experiment.spec import RUNNER_SETS, STAGE_CONFIGS, Experiment

REPO = Path(__file__).resolve().parents[1]
COMMANDS = {"annotate": ["annotate"], "eval": ["eval"], "answers": ["judge", "answers"], "judge": ["judge"]}
REQUIRED_ARGS = {
    "annotate": ["--out", "o.jsonl"],
    "eval": ["--tasks", "gsm8k"],
    "answers": ["--out", "ans"],
    "judge": [],
}
SYSTEMS_EVAL = {"s": {"model": "default", "conditions": ["plain"]}}
SYSTEMS_ANSWERS = {"s": {"model": "default", "condition": "plain"}, "t": {"model": "default", "condition": "plain"}}
MINIMAL_SECTIONS = {
    "annotate": {},
    "eval": {"tasks": ["gsm8k"], "systems": SYSTEMS_EVAL},
    "answers": {"systems": SYSTEMS_ANSWERS},
    "judge": {"a": "s", "b": "t"},
}


def parse(stage: str, args: list[str]) -> BaseModel:
    """The config the stage's real command makes of `args`, without running the command."""
    command: Any = typer.main.get_command(app)
    for name in COMMANDS[stage]:
        command = command.commands[name]
    ctx = command.make_context(" ".join(COMMANDS[stage]), list(args))
    return config_from_context(STAGE_CONFIGS[stage], ctx)


def stage_config(stage: str, section: dict[str, Any], mirror: Path, **experiment: Any) -> dict[str, Any]:
    """The config the experiment runner hands to the stage for `section`."""
    sections = {"answers": {"systems": SYSTEMS_ANSWERS}} if stage == "judge" else {}
    exp = Experiment.model_validate({"name": "t", "report": False, **experiment, **sections, stage: section})
    stages = plan(exp, REPO, mirror)
    found = [s for s in stages if s.name == stage or s.name.startswith(stage + "-")]
    return found[0].config


def other_value(name: str, field: Any) -> tuple[Any, list[str]]:
    """A valid value different from the field's default, and the command-line words that set it."""
    annotation = field.annotation
    args = typing.get_args(annotation)
    base = next((a for a in args if a is not type(None)), annotation) if args and type(None) in args else annotation
    default = field.get_default(call_default_factory=True)
    extra = (field.json_schema_extra or {}).get("cli", {})
    if typing.get_origin(base) is Literal:
        value = next(c for c in typing.get_args(base) if c != default)
        return value, [str(value)]
    if base is bool:
        return not default, []
    if base is int:
        value = default + 7 if isinstance(default, int) else 7  # above every lower bound (ge=100 included)
        return value, [str(value)]
    if base is float:
        return 0.5, ["0.5"]
    if typing.get_origin(base) is list:
        if extra.get("repeat"):
            return ["x1.yaml", "x2.yaml"], ["x1.yaml", "x2.yaml"]
        return ["gsm8k", "mmlu"], ["gsm8k,mmlu"]
    if typing.get_origin(base) is dict:
        return {"question": "instruction"}, ["question=instruction"]
    if base is Path:
        return Path("some/file.jsonl"), ["some/file.jsonl"]
    if isinstance(base, type) and issubclass(base, BaseModel):  # a sub-config (server): a YAML mapping or a name
        return base.model_validate({"preset": "vllm", "args": ["-x"]}), ["{preset: vllm, args: [-x]}"]
    return "some-value", ["some-value"]


def cli_words(model: type[BaseModel], name: str, field: Any, words: list[str], value: Any) -> list[str]:
    flags = flag_names(model, name)
    if isinstance(value, bool):
        first = flags[0]
        on, _, off = first.partition("/")
        if value:
            return [on]
        return [off or "--no-" + on.removeprefix("--")]
    if len(words) > 1:  # a repeated option
        return [w for word in words for w in (flags[0], word)]
    return [flags[0], *words]


CASES = [(stage, name) for stage, model in STAGE_CONFIGS.items() for name in model.model_fields]


@pytest.mark.parametrize("stage,name", CASES)
def test_every_field_is_set_from_the_command_line_and_from_an_experiment(stage, name, data_dir):
    model = STAGE_CONFIGS[stage]
    field = model.model_fields[name]
    value, words = other_value(name, field)
    assert value is not True or field.default is False

    own = name in ("out", "tasks") and flag_names(model, name)[0] in REQUIRED_ARGS[stage]
    base = [] if own else REQUIRED_ARGS[stage]
    if stage == "answers" and name == "questions":
        value, words = "mt_bench", ["mt_bench"]  # a named set: a path would have to exist for the experiment
    cli = parse(stage, base + cli_words(model, name, field, words, value))
    assert getattr(cli, name) == value, f"{stage}: {flag_names(model, name)[0]} does not set {name}"

    # key=value sets it too, with the value read as YAML
    plain = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
    override = f"{name}={json.dumps(plain if not isinstance(value, Path) else str(value))}"
    by_override = load_stage_config(
        model,
        None,
        {k: v for k, v in (("out", "o"), ("tasks", ["gsm8k"])) if k in model.model_fields and k != name},
        [override],
    )
    assert getattr(by_override, name) == value

    section = dict(MINIMAL_SECTIONS[stage])
    if name in RUNNER_SETS[stage]:
        # Set by the runner from the experiment: the stage folder, the experiment's seed and data
        # folder, a system's model and conditions, the judge's answers labels.
        config = stage_config(stage, section, data_dir, seed=7, data_dir=str(data_dir))
        expected = {
            "out": None,
            "seed": 7,
            "data_dir": "{data_dir}",
            "model": "default",
            "conditions": ["plain"],
            "condition": "plain",
            "a": "{stage:answers-s}",
            "b": "{stage:answers-t}",
        }[name]
        if name == "out":
            assert "{out}" in str(config["out"])
        else:
            assert config[name] == expected
        return
    section[name] = value if not isinstance(value, Path) else str(value)
    if stage == "annotate" and name == "data":
        source = data_dir / "lima" / "train.jsonl"  # a file the runner can hash
        section[name] = str(source)
        config = stage_config(stage, section, data_dir)
        assert config["data"] == "{data_file}"  # the file's path is filled in at run time; its content is in the key
        return
    if stage == "annotate" and name == "template":
        pytest.skip("a template must name a real file; covered by test_annotate_template_from_the_experiment")
    if stage == "eval" and name == "tasks":
        section[name] = ["gsm8k", "mmlu"]
    if stage == "eval" and name == "task_files":
        pytest.skip("task files must exist; covered by test_eval_task_files_from_the_experiment")
    config = stage_config(stage, section, data_dir)
    expected = value if not isinstance(value, Path) else str(value)
    if isinstance(value, BaseModel):
        expected = value.model_dump(mode="json")
    assert config[name] == (str(expected) if isinstance(value, Path) else expected)


@pytest.mark.parametrize("stage", list(STAGE_CONFIGS))
def test_the_command_line_and_an_experiment_have_the_same_defaults(stage, data_dir):
    cli = parse(stage, REQUIRED_ARGS[stage]).model_dump(mode="json")
    config = stage_config(stage, MINIMAL_SECTIONS[stage], data_dir)
    for name in STAGE_CONFIGS[stage].model_fields:
        if name in RUNNER_SETS[stage] or name in ("out", "tasks"):
            continue
        assert cli[name] == config[name], f"{stage}.{name}: command line {cli[name]!r}, experiment {config[name]!r}"
        assert cli[name] == STAGE_CONFIGS[stage].model_fields[name].get_default(call_default_factory=True) or str(
            cli[name]
        ) == str(STAGE_CONFIGS[stage].model_fields[name].get_default(call_default_factory=True))


def test_config_file_then_options_then_overrides(tmp_path):
    from selfprompt.evaluate.runner import EvalConfig

    file = tmp_path / "eval.yaml"
    file.write_text("tasks: [gsm8k]\nlimit: 3\nmax_tokens: 64\nbatch_size: 2\n")
    config = parse("eval", ["--config", str(file), "--limit", "5", "--max-tokens", "32"])
    assert (config.tasks, config.limit, config.max_tokens, config.batch_size) == (["gsm8k"], 5, 32, 2)
    config = load_stage_config(EvalConfig, file, {"limit": 5}, ["limit=9"])
    assert config.limit == 9
    with pytest.raises(ConfigError, match="unknown key 'limt'.*valid keys: .*limit"):
        load_stage_config(EvalConfig, file, {}, ["limt=9"])
    with pytest.raises(ConfigError, match=r"override 'limit=0': invalid value for 'limit'"):
        load_stage_config(EvalConfig, file, {}, ["limit=0"])
    with pytest.raises(ConfigError, match="missing 'tasks': give --tasks"):
        load_stage_config(EvalConfig, None, {}, [])


def test_annotate_template_from_the_experiment(data_dir, tmp_path):
    from selfprompt.annotate.template import TEMPLATE_DIR

    own = tmp_path / "mine.yaml"
    own.write_text((TEMPLATE_DIR / "expert-role-v1.yaml").read_text())
    config = stage_config("annotate", {"template": str(own)}, data_dir)
    assert config["template"] == str(own)
    assert parse("annotate", ["--out", "o.jsonl", "--template", str(own)]).template == str(own)


def test_eval_task_files_from_the_experiment(data_dir, tmp_path):
    files = [str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml")]
    config = stage_config("eval", {**MINIMAL_SECTIONS["eval"], "task_files": files}, data_dir)
    assert config["task_files"] == files


@pytest.mark.parametrize("name", ["demo", "paper-mistral-7b"])
def test_the_words_the_runner_hands_a_stage_parse_back_to_its_config(name, data_dir, tmp_path):
    """`selfprompt run` hands each stage its config as key=value words: the command reads back exactly it."""
    import yaml

    from selfprompt.experiment.runner import assign_keys, resolve_args
    from selfprompt.experiment.spec import load_experiment

    exp = load_experiment(REPO / "experiments" / f"{name}.yaml")
    stages = plan(exp, REPO / "experiments", data_dir)
    assign_keys(stages)
    folders = {s.name: tmp_path / s.folder_name for s in stages}
    checked = set()
    for stage in stages:
        kind = stage.name.split("-")[0]
        if kind not in STAGE_CONFIGS:
            continue
        words = resolve_args(stage, folders, tmp_path, data_dir)
        command = words[: len(COMMANDS[kind])]
        assert command == COMMANDS[kind]
        rest = words[len(command) :]
        if kind in ("annotate", "answers"):  # plain commands: the real parse path, CLI-only options included
            config = parse(kind, rest).model_dump(mode="json")
        else:  # a group's own command gets its key=value words from OverridesGroup when it runs
            assert all("=" in w and not w.startswith("-") for w in rest)
            config = load_stage_config(STAGE_CONFIGS[kind], None, {}, rest).model_dump(mode="json")
        expected = yaml.safe_load(
            resolve_args(
                type(stage)(stage.name, [yaml.safe_dump(stage.config)], paths=stage.paths), folders, tmp_path, data_dir
            )[0]
        )
        assert config == expected, stage.name
        checked.add(kind)
    assert checked == set(STAGE_CONFIGS)


def test_groups_take_key_value_overrides_and_still_run_their_subcommands(tmp_path):
    from typer.testing import CliRunner

    runner = CliRunner()
    # The override reaches eval's own command (it fails on the task name, before any model is loaded) ...
    bad = runner.invoke(app, ["eval", "--out", str(tmp_path / "e"), "tasks=[gsm9k]", "limit=2"])
    assert isinstance(bad.exception, ConfigError) and "gsm9k" in str(bad.exception)
    bad = runner.invoke(app, ["eval", "--tasks", "gsm8k", "limit=0"])
    assert isinstance(bad.exception, ConfigError) and "override 'limit=0'" in str(bad.exception)
    # ... options after an override are read as anywhere else (the bad task name comes from an option given
    # after the override), a stray word is a usage error, not silently dropped ...
    late = runner.invoke(app, ["eval", "limit=2", "--tasks", "gsm9k", "--out", str(tmp_path / "e")])
    assert isinstance(late.exception, ConfigError) and "gsm9k" in str(late.exception)
    stray = runner.invoke(app, ["eval", "limit=2", "--tasks", "gsm8k", "bogus"])
    assert stray.exit_code == 2 and "'bogus' is not a key=value override" in stray.output
    # ... and a subcommand name is still a subcommand.
    listed = runner.invoke(app, ["eval", "tasks"])
    assert listed.exit_code == 0 and "gsm8k" in listed.output
    judge = runner.invoke(app, ["judge", f"a={tmp_path / 'none.jsonl'}", "b=x", f"out={tmp_path / 'j'}"])
    assert "none.jsonl" in str(judge.exception) and not (tmp_path / "j").exists()


def test_backend_rule(tmp_path):
    from selfprompt.generate.backends import infer_backend

    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    folder = tmp_path / "model"
    folder.mkdir()
    assert infer_backend("default", embedded="llamacpp") == "llamacpp"
    assert infer_backend("default", embedded="hf") == "hf"
    assert infer_backend(str(gguf)) == "llamacpp" and infer_backend(str(folder), embedded="llamacpp") == "hf"
    assert infer_backend("gpt-4o") == "openai"
    assert infer_backend("default", base_url="http://127.0.0.1:8080/v1") == "openai"
    assert infer_backend(str(folder), "llamacpp") == "llamacpp"  # an explicit backend wins
    with pytest.raises(ConfigError, match="valid: auto, hf, llamacpp, openai"):
        infer_backend("default", "vllm")


@pytest.mark.parametrize(
    "words,error",
    [
        (["eval", "limit=2", "--tasks", "gsm9k", "--out", "{tmp}/e"], "gsm9k"),
        (["eval", "--tasks", "gsm9k", "limit=2", "--out", "{tmp}/e"], "gsm9k"),
        (["judge", "b=x", "--a", "{tmp}/none.jsonl", "out={tmp}/j"], "none.jsonl"),
        (["judge", "answers", "limit=1", "--questions", "{tmp}/none.jsonl", "--out", "{tmp}/a"], "none.jsonl"),
        (["annotate", "limit=1", "--data", "{tmp}/none.jsonl", "--out", "{tmp}/o.jsonl"], "none.jsonl"),
    ],
)
def test_every_command_takes_options_and_key_value_words_in_any_order(words, error, tmp_path):
    """One rule for every stage command: the option after a key=value word is read (its bad value is the
    error, found before a model is loaded)."""
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, [w.replace("{tmp}", str(tmp_path)) for w in words])
    assert isinstance(result.exception, SelfPromptError) and error in str(result.exception), result.output
    assert not any((tmp_path / name).exists() for name in ("e", "j", "a"))


@pytest.mark.parametrize("stage,name", CASES)
def test_an_empty_value_means_none_where_allowed_and_is_refused_elsewhere(stage, name):
    model = STAGE_CONFIGS[stage]
    given = {k: v for k, v in (("out", "o"), ("tasks", ["gsm8k"])) if k in model.model_fields and k != name}
    field = model.model_fields[name]
    nullable = type(None) in typing.get_args(field.annotation)
    for empty in ([f"{name}="], [f"{name}=' '"]):
        if nullable:
            assert getattr(load_stage_config(model, None, given, empty), name) is None
        else:
            with pytest.raises(ConfigError, match=f"override '{name}=.*': '{name}' is empty: give a value"):
                load_stage_config(model, None, given, empty)


def test_empty_options_and_file_values_follow_the_same_rule(tmp_path):
    with pytest.raises(ConfigError, match="option --teacher: 'teacher' is empty: give a value, or leave it out"):
        parse("annotate", ["--out", "o.jsonl", "--teacher", ""])
    with pytest.raises(ConfigError, match="option --tasks: 'tasks' is empty: give a value"):
        parse("eval", ["--tasks", ""])
    assert parse("annotate", ["--out", "o.jsonl", "--base-url", "", "--field-map", ""]).base_url is None
    assert parse("answers", ["--out", "a", "limit="]).limit is None
    file = tmp_path / "a.yaml"
    file.write_text('teacher: ""\n')
    with pytest.raises(ConfigError, match=f"{file}: 'teacher' is empty"):
        parse("annotate", ["--out", "o.jsonl", "--config", str(file)])
    from typer.testing import CliRunner

    dry = CliRunner().invoke(app, ["annotate", "teacher=", "--out", "o.jsonl", "--dry-run"])
    assert isinstance(dry.exception, ConfigError) and "'teacher' is empty" in str(dry.exception)


def test_train_overrides_follow_the_same_rule(tmp_path):
    from selfprompt.train.config import load_config

    recipe = tmp_path / "r.yaml"
    recipe.write_text('data: x.jsonl\noutput_dir: out\nsystem_prompt: ""\n')
    assert load_config(recipe).system_prompt == ""  # an explicit "" is an empty system message
    config = load_config(recipe, ["system_prompt=", "max_rows="])
    assert config.system_prompt is None and config.max_rows is None
    with pytest.raises(ConfigError, match="override 'lora_r=': 'lora_r' is empty: give a value, or leave it out"):
        load_config(recipe, ["lora_r="])


def test_a_folder_given_as_a_config_file_is_called_a_folder(tmp_path):
    from selfprompt.errors import DataError
    from selfprompt.experiment.spec import load_experiment
    from selfprompt.train.config import load_config

    with pytest.raises(ConfigError, match=f"config file '{tmp_path}' is a folder, not a YAML file"):
        parse("eval", ["--tasks", "gsm8k", "--config", str(tmp_path)])
    with pytest.raises(ConfigError, match="not found"):
        parse("eval", ["--tasks", "gsm8k", "--config", str(tmp_path / "missing.yaml")])
    with pytest.raises(ConfigError, match=f"recipe '{tmp_path}' is a folder, not a YAML file"):
        load_config(tmp_path)
    with pytest.raises(DataError, match="is a folder, not an experiment YAML file"):
        load_experiment(tmp_path)


# Where each stage's settings table is: the doc, and text just before the table.
SETTINGS_TABLES = {
    "annotate": ("docs/annotate.md", "Every option is a field of `AnnotateConfig`"),
    "eval": ("docs/evaluate.md", "Options of `selfprompt eval`"),
    "answers": ("docs/judge-run-report.md", "Settings of `selfprompt judge answers`"),
    "judge": ("docs/judge-run-report.md", "Settings of `selfprompt judge` ("),
}


def settings_table(doc: str, anchor: str) -> list[str]:
    """The option cells (first column) of the first table after `anchor` in `doc`."""
    text = (REPO / doc).read_text(encoding="utf-8")
    assert anchor in text, f"{doc}: no '{anchor}'"
    lines = text[text.index(anchor) :].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return [line.split("|")[1] for line in lines[start + 2 : end]]


@pytest.mark.parametrize("stage", list(STAGE_CONFIGS))
def test_every_setting_is_in_its_stage_docs_table(stage):
    doc, anchor = SETTINGS_TABLES[stage]
    cells = settings_table(doc, anchor)
    flags = {flag for cell in cells for flag in re.findall(r"--[a-z][a-z-]*(?:/--[a-z-]+)?", cell)}
    model = STAGE_CONFIGS[stage]
    missing = [flag_names(model, name)[0] for name in model.model_fields if flag_names(model, name)[0] not in flags]
    assert not missing, f"{doc}: the settings table of {stage} lacks {missing}"
