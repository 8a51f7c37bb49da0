"""Settings are checked before a model is loaded, by the real CLI.

Each command gets one bad setting and a model spec that would fail differently (a model folder that
does not exist) if the command reached the model: the error must name the setting, not the model.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SELFPROMPT = str(Path(sys.executable).parent / "selfprompt")
MISSING_MODEL = "./no-such-model-folder"  # resolving it fails with "model folder ... not found"


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([SELFPROMPT, *args], capture_output=True, text=True, timeout=180, cwd=cwd)


@pytest.fixture()
def answers(tmp_path) -> Path:
    path = tmp_path / "answers.jsonl"
    path.write_text(json.dumps({"id": "1", "question": "Why?", "answer": "Because."}) + "\n")
    return path


@pytest.mark.parametrize(
    "args, says",
    [
        (["ask", "--model", MISSING_MODEL, "--condition", "roleplay", "q"], "unknown condition 'roleplay'"),
        (["ask", "--model", MISSING_MODEL, "--backend", "vllm", "q"], "unknown backend 'vllm'"),
        (["ask", "--model", MISSING_MODEL, "--format", "xml-v9", "q"], "unknown self-prompt format 'xml-v9'"),
        (["eval", "--model", MISSING_MODEL, "--tasks", "gsm8k,nope", "--out", "{tmp}/e"], "unknown task(s) nope"),
        (
            [
                "eval",
                "--model",
                MISSING_MODEL,
                "--tasks",
                "gsm8k",
                "--conditions",
                "plain,roleplay",
                "--out",
                "{tmp}/e",
            ],
            "unknown condition(s) roleplay",
        ),
        (
            ["eval", "--model", MISSING_MODEL, "--tasks", "gsm8k", "--data-dir", "{tmp}/no-mirror", "--out", "{tmp}/e"],
            "no-mirror' (from --data-dir) is not a folder",
        ),
        (
            ["eval", "--model", MISSING_MODEL, "--tasks", "gsm8k", "--backend", "vllm", "--out", "{tmp}/e"],
            "'backend': Input should be 'auto', 'hf', 'llamacpp' or 'openai'",
        ),
        (
            ["judge", "answers", "--model", MISSING_MODEL, "--questions", "{tmp}/missing.jsonl", "--out", "{tmp}/a"],
            "missing.jsonl' is neither vicuna_bench nor mt_bench nor a JSONL file",
        ),
        (
            ["judge", "answers", "--model", MISSING_MODEL, "--condition", "roleplay", "--out", "{tmp}/a"],
            "unknown condition 'roleplay'",
        ),
        (
            ["judge", "answers", "--model", MISSING_MODEL, "--data-dir", "{tmp}/no-mirror", "--out", "{tmp}/a"],
            "no-mirror' (from --data-dir) is not a folder",
        ),
        (
            [
                "judge",
                "--judge",
                MISSING_MODEL,
                "--judge-backend",
                "hf",
                "--a",
                "{answers}",
                "--b",
                "{answers}",
                "--verdict-format",
                "xml",
                "--out",
                "{tmp}/j",
            ],
            "verdict_format",
        ),
        (
            [
                "judge",
                "--judge",
                MISSING_MODEL,
                "--judge-backend",
                "hf",
                "--a",
                "{answers}",
                "--b",
                "{tmp}/nope.jsonl",
                "--out",
                "{tmp}/j",
            ],
            "nope.jsonl: answer file not found",
        ),
        (
            [
                "judge",
                "--judge",
                MISSING_MODEL,
                "--judge-backend",
                "vllm",
                "--a",
                "{answers}",
                "--b",
                "{answers}",
                "--out",
                "{tmp}/j",
            ],
            "'backend': Input should be 'auto', 'hf', 'llamacpp' or 'openai'",
        ),
        (["serve", "--model", MISSING_MODEL, "--format", "xml-v9"], "unknown self-prompt format 'xml-v9'"),
        (["serve", "--model", MISSING_MODEL, "--backend", "vllm"], "unknown backend 'vllm'"),
        (
            ["annotate", "--teacher", MISSING_MODEL, "--backend", "vllm", "--out", "{tmp}/r.jsonl"],
            "'backend': Input should be 'auto', 'hf', 'llamacpp' or 'openai'",
        ),
        (
            [
                "annotate",
                "--teacher",
                MISSING_MODEL,
                "--backend",
                "hf",
                "--data",
                "{tmp}/rows.jsonl",
                "--out",
                "{tmp}/r.jsonl",
            ],
            "rows.jsonl",
        ),
        (
            [
                "annotate",
                "--teacher",
                MISSING_MODEL,
                "--backend",
                "hf",
                "--template",
                "no-such-template",
                "--out",
                "{tmp}/r.jsonl",
            ],
            "no-such-template",
        ),
    ],
)
def test_a_bad_setting_is_named_before_the_model_is_loaded(args, says, tmp_path, answers):
    proc = run(*[a.format(tmp=tmp_path, answers=answers) for a in args])
    assert proc.returncode == 2, proc.stderr
    assert says in proc.stderr, proc.stderr
    assert "no-such-model-folder" not in proc.stderr, "the model was reached before the setting was checked"
    assert "Traceback" not in proc.stderr


def test_train_checks_its_data_file_and_method_before_the_tokenizer(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"model: {MISSING_MODEL}\ndata: {tmp_path / 'missing.jsonl'}\noutput_dir: {tmp_path / 'o'}\n")
    proc = run("train", "--config", str(recipe))
    assert proc.returncode == 2 and "missing.jsonl: training data (data=) not found" in proc.stderr, proc.stderr
    data = tmp_path / "rows.jsonl"
    data.write_text("")
    proc = run("train", "--config", str(recipe), f"data={data}", "format=xml-v9")
    assert proc.returncode == 2 and "unknown self-prompt format 'xml-v9'" in proc.stderr, proc.stderr
    assert "no-such-model-folder" not in proc.stderr


def test_a_missing_model_path_is_reported_as_such_by_the_cli(tmp_path):
    (tmp_path / "runs").mkdir()
    proc = run("ask", "--model", "runs/sp", "q", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "model folder 'runs/sp' not found" in proc.stderr and "HF_TOKEN" not in proc.stderr


@pytest.mark.parametrize("questions", [[""], ["   \n\t"], ["Why is the sky blue?", " "]])
def test_ask_refuses_an_empty_question_as_a_usage_error(questions):
    proc = run("ask", "--model", MISSING_MODEL, *questions)
    assert proc.returncode == 2, proc.stderr
    assert "Usage: selfprompt ask" in proc.stderr and "empty" in proc.stderr, proc.stderr
    assert f"question {len(questions)} of {len(questions)} empty" in proc.stderr
    assert "no-such-model-folder" not in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) <= 6, proc.stderr
