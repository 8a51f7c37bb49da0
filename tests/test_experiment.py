"""`selfprompt run`: a tiny real experiment end to end, a rerun that does nothing, a kill and resume.

Every stage is the real command on the real default model (llama.cpp teacher and judge, LoRA
training, hf eval), on a handful of rows, items and steps.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from selfprompt.experiment.runner import DONE_FILE, assign_keys, plan
from selfprompt.experiment.spec import Experiment, load_experiment

REPO = Path(__file__).resolve().parents[1]
TINY = {
    "name": "tiny",
    "seed": 0,
    # A short instruction file (Alpaca columns) keeps teacher prompts and training rows small.
    "annotate": {"data": "{questions}", "teacher": "default", "backend": "llamacpp", "max_tokens": 40},
    # One trained model keeps the test short; the untuned default is the other system.
    "train": {
        "recipe": str(REPO / "recipes" / "smollm2-135m-lora-cpu.yaml"),
        "modes": ["self-prompt"],
        "overrides": {
            "max_rows": 3,
            "max_steps": 1,
            "per_device_batch_size": 3,
            "save_steps": 1,
            "include_statuses": ["ok", "invalid", "refused", "error"],
        },
    },
    "eval": {
        "tasks": ["gsm8k"],
        "limit": 2,
        "max_tokens": 16,
        "trigger_max_tokens": 6,
        "systems": {
            "self-prompt": {"model": "train:self-prompt", "conditions": ["self-prompt"]},
            "baseline": {"model": "default", "conditions": ["plain"]},
        },
    },
    "answers": {
        "limit": 2,
        "max_tokens": 16,
        "systems": {
            "self-prompt": {"model": "train:self-prompt", "condition": "self-prompt"},
            "baseline": {"model": "default", "condition": "plain"},
        },
    },
    "judge": {"a": "self-prompt", "b": "baseline", "backend": "llamacpp", "max_tokens": 16, "max_verdict_attempts": 1},
}


INSTRUCTIONS = [
    {"instruction": "Name three primary colors.", "output": "Red, yellow and blue."},
    {"instruction": "What is the boiling point of water at sea level?", "output": "100 degrees Celsius."},
    {"instruction": "Give a synonym for 'happy'.", "output": "Joyful."},
]


def tiny_spec(folder: Path) -> dict:
    """TINY with its instruction file written into `folder`."""
    data = folder / "instructions.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in INSTRUCTIONS))
    spec = json.loads(json.dumps(TINY))
    spec["annotate"]["data"] = str(data)
    return spec


def keys_for(spec: dict, data_dir: Path) -> dict[str, str]:
    stages = plan(Experiment.model_validate(spec), REPO, data_dir)
    assign_keys(stages)
    return {s.name: s.key for s in stages}


def test_a_changed_setting_changes_only_what_depends_on_it(data_dir, tmp_path):
    spec = tiny_spec(tmp_path)
    base = keys_for(spec, data_dir)
    assert list(base) == [
        "annotate",
        "train-self-prompt",
        "eval-self-prompt",
        "eval-baseline",
        "answers-self-prompt",
        "answers-baseline",
        "judge",
        "report",
    ]
    assert base == keys_for(json.loads(json.dumps(spec)), data_dir), "keys are deterministic"

    judge_changed = json.loads(json.dumps(spec))
    judge_changed["judge"]["max_tokens"] = 32
    changed = {k for k, v in keys_for(judge_changed, data_dir).items() if v != base[k]}
    assert changed == {"judge", "report"}

    eval_changed = json.loads(json.dumps(spec))
    eval_changed["eval"]["systems"]["baseline"]["conditions"] = ["plain", "manual-role"]
    changed = {k for k, v in keys_for(eval_changed, data_dir).items() if v != base[k]}
    assert changed == {"eval-baseline", "report"}

    train_changed = json.loads(json.dumps(spec))
    train_changed["train"]["overrides"]["learning_rate"] = 1e-4
    changed = {k for k, v in keys_for(train_changed, data_dir).items() if v != base[k]}
    assert changed == {"train-self-prompt", "eval-self-prompt", "answers-self-prompt", "judge", "report"}

    # The input file's content is part of the key: an edited file reruns everything downstream of it.
    Path(spec["annotate"]["data"]).write_text(json.dumps(INSTRUCTIONS[0]) + "\n")
    changed = {k for k, v in keys_for(spec, data_dir).items() if v != base[k]}
    assert changed == set(base) - {"eval-baseline", "answers-baseline"}


def test_prompt_files_and_local_model_content_are_part_of_the_stage_keys(data_dir, tmp_path, monkeypatch):
    """A done stage is skipped by its key, so an edited prompt or a changed model must change the key."""
    from selfprompt.prompts import PROMPT_DIR_ENV, prompt_path

    model = tmp_path / "some" / "model"  # a local model folder: only its content is read for the key
    model.mkdir(parents=True)
    (model / "config.json").write_text('{"model_type": "llama"}')
    (model / "model.safetensors").write_bytes(b"weights v1")
    spec = tiny_spec(tmp_path)
    spec["eval"]["systems"]["baseline"] = {"model": str(model), "conditions": ["plain", "icl-self-prompt"]}
    base = keys_for(spec, data_dir)

    prompts = tmp_path / "prompts"
    prompts.mkdir()
    for name in ("icl-self-prompt", "judge-pairwise"):
        shutil.copy(prompt_path(name), prompts / f"{name}.yaml")
    monkeypatch.setenv(PROMPT_DIR_ENV, str(prompts))
    assert keys_for(spec, data_dir) == base, "the same prompt texts from another folder: the same keys"

    icl = prompts / "icl-self-prompt.yaml"
    icl.write_text(icl.read_text().replace("Do not answer the question.", "Never answer the question."))
    after_icl = keys_for(spec, data_dir)
    assert {k for k, v in after_icl.items() if v != base[k]} == {"eval-baseline", "report"}

    judge = prompts / "judge-pairwise.yaml"
    judge.write_text(judge.read_text().replace("careful, impartial", "strict"))
    after_judge = keys_for(spec, data_dir)
    assert {k for k, v in after_judge.items() if v != after_icl[k]} == {"judge", "report"}

    (model / "model.safetensors").write_bytes(b"weights v2")  # retrained in place: same path, new content
    after_model = keys_for(spec, data_dir)
    assert {k for k, v in after_model.items() if v != after_judge[k]} == {"eval-baseline", "report"}


@pytest.mark.parametrize("name", ["demo", "paper-mistral-7b", "paper-llama2-7b"])
def test_shipped_experiments_plan_every_stage(name, data_dir):
    exp = load_experiment(REPO / "experiments" / f"{name}.yaml")
    stages = plan(exp, REPO / "experiments", data_dir)
    assert [s.name for s in stages] == [
        "annotate",
        "train-self-prompt",
        "train-baseline",
        "eval-self-prompt",
        "eval-baseline",
        "answers-self-prompt",
        "answers-baseline",
        "judge",
        "report",
    ]
    judge = next(s for s in stages if s.name == "judge")
    # The 135M demo judge needs schema-constrained verdicts; GPT-4 writes FastChat's tags.
    assert judge.config["verdict_format"] == ("json" if name == "demo" else "tags")
    assert ("verdict_format=json" in judge.args) == (name == "demo")  # handed to the command as key=value


def test_bad_experiment_files_name_the_field(tmp_path):
    from selfprompt.errors import ConfigError, DataError

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "x", "eval": {"tasks": ["gsm8k"], "systems": {"a": {"model": "m"}}}}))
    with pytest.raises(DataError, match="eval.systems.a.conditions"):
        load_experiment(bad)
    missing = tiny_spec(tmp_path)
    missing["judge"]["a"] = "nobody"
    with pytest.raises(ConfigError, match="nobody"):
        plan(Experiment.model_validate(missing), REPO, None)


def run_cli(spec_path: Path, out: Path, **popen) -> subprocess.Popen:
    exe = str(Path(sys.executable).parent / "selfprompt")
    return subprocess.Popen(
        [exe, "run", str(spec_path), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **popen,
    )


def finish(proc: subprocess.Popen) -> str:
    output, _ = proc.communicate(timeout=1200)
    assert proc.returncode == 0, output[-4000:]
    return output


def stage_folders(root: Path) -> dict[str, Path]:
    index = json.loads((root / "experiment.json").read_text())
    return {name: root / entry["folder"] for name, entry in index["stages"].items()}


FINAL_FILES = [
    "eval-self-prompt/results.json",
    "eval-baseline/results.json",
    "answers-self-prompt/answers.jsonl",
    "answers-baseline/answers.jsonl",
    "judge/results.json",
    "judge/judgments.jsonl",
]


def final_results(root: Path) -> dict[str, str]:
    folders = stage_folders(root)
    out = {}
    for rel in FINAL_FILES:
        stage, name = rel.split("/")
        text = (folders[stage] / name).read_text()
        if name == "results.json":
            data = json.loads(text)
            data.pop("a", None), data.pop("b", None)  # absolute paths differ between the two run folders
            text = json.dumps(data, sort_keys=True)
        out[rel] = text
    return out


@pytest.mark.llamacpp
@pytest.mark.slow
def test_tiny_experiment_runs_reruns_for_free_and_resumes_after_kill(data_dir, tmp_path):
    pytest.importorskip("llama_cpp")
    spec_path = tmp_path / "tiny.yaml"
    spec_path.write_text(yaml.safe_dump({**tiny_spec(tmp_path), "data_dir": str(data_dir)}))
    root = tmp_path / "run"
    finish(run_cli(spec_path, root))

    folders = stage_folders(root)
    assert all((f / DONE_FILE).exists() for f in folders.values())
    report = folders["report"] / "report.html"
    assert report.exists() and "Pairwise judge" in report.read_text()
    judged = json.loads((folders["judge"] / "results.json").read_text())
    assert judged["n_pairs"] == 2 and judged["win"] + judged["tie"] + judged["loss"] + judged["error"] == 2
    eval_sp = json.loads((folders["eval-self-prompt"] / "results.json").read_text())
    assert eval_sp["tasks"]["gsm8k"]["conditions"]["self-prompt"]["n"] == 2
    done_before = {name: (f / DONE_FILE).stat().st_mtime_ns for name, f in folders.items()}

    # A second invocation does nothing.
    output = finish(run_cli(spec_path, root))
    assert output.count("[skip]") == len(folders) and "[run ]" not in output
    assert {name: (f / DONE_FILE).stat().st_mtime_ns for name, f in folders.items()} == done_before

    # Kill mid-stage, rerun: identical final results. The copy keeps every other stage; the self-prompt
    # answers, the judge and the report are run again, and the run is killed while answering.
    copy = tmp_path / "resumed"
    shutil.copytree(root, copy)
    for name in ("answers-self-prompt", "judge", "report"):
        shutil.rmtree(copy / folders[name].name)
    proc = run_cli(spec_path, copy, start_new_session=True)
    log = copy / folders["answers-self-prompt"].name / "stage.log"
    deadline = time.monotonic() + 600
    while not log.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    time.sleep(4)  # the stage is loading its model or answering
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (copy / folders["answers-self-prompt"].name / DONE_FILE).exists(), "killed before the stage finished"
    output = finish(run_cli(spec_path, copy))
    assert "[skip] train-self-prompt" in output and "[run ] answers-self-prompt" in output
    assert final_results(copy) == final_results(root)
