"""What a new user runs into, by the real CLI: each case is a finding of a hostile new-user test.

A server that cannot be reached, a model name that is neither local nor served, list settings given as
one value, an old experiment file, and an annotate run where the teacher never answered.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import yaml

from selfprompt.cliconfig import load_stage_config
from selfprompt.errors import DataError
from selfprompt.evaluate.config import EvalConfig
from selfprompt.experiment.spec import load_experiment

SELFPROMPT = str(Path(sys.executable).parent / "selfprompt")


def closed_port() -> int:
    with socket.socket() as s:  # bound then closed: nothing listens there
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    return subprocess.run(
        [SELFPROMPT, *args], capture_output=True, text=True, timeout=300, cwd=cwd, env={**environ, **env}
    )


def test_an_unreachable_server_is_one_line_naming_it_not_a_bug(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/v1"
    proc = run(
        "eval",
        "--model",
        "m",
        "--tasks",
        "gsm8k",
        "--limit",
        "1",
        "--max-tokens",
        "8",
        "--out",
        "e",
        "--base-url",
        url,
        cwd=tmp_path,
        OPENAI_API_KEY="x",
    )
    assert proc.returncode == 2, proc.stderr
    assert f"cannot reach the model server {url}" in proc.stderr
    assert "Traceback" not in proc.stderr and "This is a bug" not in proc.stderr


def test_a_name_that_is_neither_local_nor_served_says_where_it_was_sent(tmp_path):
    proc = run("eval", "--model", "runs/sp", "--tasks", "gsm8k", "--limit", "1", "--out", "e", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "'runs/sp' is not the embedded default nor a local file or folder" in proc.stderr
    assert "OpenAI-compatible server" in proc.stderr and "OPENAI_API_KEY" in proc.stderr


def test_a_list_setting_takes_one_comma_separated_value():
    config = load_stage_config(EvalConfig, overrides=["tasks=gsm8k,mmlu", "conditions=plain"])
    assert config.tasks == ["gsm8k", "mmlu"] and config.conditions == ["plain"]


def test_an_old_experiment_with_extra_args_says_what_replaces_it(tmp_path):
    old = tmp_path / "old.yaml"
    old.write_text(yaml.safe_dump({"name": "old", "annotate": {"extra_args": ["--max-chars", "600"]}}))
    try:
        load_experiment(old)
    except DataError as e:
        assert "annotate.extra_args" in str(e) and "max_chars: 600" in str(e)
    else:
        raise AssertionError("extra_args was accepted")
    typo = tmp_path / "typo.yaml"
    typo.write_text(
        yaml.safe_dump(
            {
                "name": "t",
                "eval": {"tasks": ["gsm8k"], "limt": 3, "systems": {"a": {"model": "m", "conditions": ["plain"]}}},
            }
        )
    )
    try:
        load_experiment(typo)
    except DataError as e:
        assert "eval.limt" in str(e) and "valid keys:" in str(e) and " limit," in str(e)
    else:
        raise AssertionError("a misspelled key was accepted")
    try:
        load_experiment(typo, ["eval.limt=4"])
    except DataError as e:
        assert "override eval.limt" in str(e)


def test_annotate_where_the_teacher_never_answered_fails(tmp_path, data_dir):
    proc = run(
        "annotate",
        "--teacher",
        "m",
        "--base-url",
        f"http://127.0.0.1:{closed_port()}/v1",
        "--limit",
        "1",
        "--max-retries",
        "0",
        "--out",
        "a.jsonl",
        "--data-dir",
        str(data_dir),
        cwd=tmp_path,
        OPENAI_API_KEY="x",
    )
    assert proc.returncode == 2, proc.stderr
    assert "every row failed with status 'error' (1)" in proc.stderr and "--retry-errors" in proc.stderr
    assert (tmp_path / "a.jsonl").exists()  # what was written is kept: the row and its status
