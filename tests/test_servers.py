"""Managed inference servers (selfprompt.generate.servers): real llama.cpp servers on the default model, started
and stopped by the stage; kill -9 of the runner leaves no server; a server that never answers fails in time;
what a server cannot do is refused before anything starts."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from selfprompt.errors import ConfigError, SelfPromptError
from selfprompt.evaluate.runner import EvalConfig, run_eval
from selfprompt.generate.servers import (
    SERVER_LOG,
    ManagedServer,
    ServerConfig,
    ServerStartError,
    describe_command,
)

CLI = [sys.executable, "-c", "from selfprompt.cli import main; main()"]


def server_pids(log: Path) -> list[int]:
    """The server pids (= process groups) the watchdog wrote to a server log, one per start."""
    return [int(p) for p in re.findall(r"server pid (\d+)", log.read_text())]


def alive(pid: int) -> bool:
    """True while a process with this pid exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def group_members(pgid: int) -> list[int]:
    """Live processes whose process group is `pgid` (from the process table)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def gone(pid: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid) and not group_members(pid):
            return True
        time.sleep(0.1)
    return False


# ---------------------------------------------------------------------------------------------
# Settings, no server started


def test_server_setting_reads_a_preset_name_or_a_mapping_and_rejects_unknowns():
    assert ServerConfig.model_validate("vllm").preset == "vllm"
    cfg = ServerConfig.model_validate({"preset": "vllm", "args": ["--data-parallel-size", "8"]})
    assert cfg.template()[-2:] == ["--data-parallel-size", "8"] and cfg.can_prefill
    assert not ServerConfig.model_validate("llamacpp").can_prefill
    with pytest.raises(ValueError, match="valid: vllm, llamacpp, selfprompt"):
        ServerConfig.model_validate("vlm")
    with pytest.raises(ValueError, match="unknown placeholder {prot}"):
        ServerConfig.model_validate({"command": ["srv", "--port", "{prot}"]})
    with pytest.raises(ValueError, match=r"must take \{port\}"):
        ServerConfig.model_validate({"command": ["srv"]})
    # a placeholder with a brace missing would reach the server as literal text; JSON arguments stay valid
    for word in ("--model={model", "model}", "{served_name", "--port=port}"):
        with pytest.raises(ValueError, match="malformed placeholder"):
            ServerConfig.model_validate({"command": ["srv", word, "--p", "{port}"]})
    for word in ('{"level": 3}', "{not_a_placeholder", "x}"):
        assert ServerConfig.model_validate({"command": ["srv", word, "{port}"]}).command[1] == word
    # YAML reads `[srv, --threads, 4, "{port}"]` with a number in it: still a word of the command
    assert ServerConfig.model_validate({"command": ["srv", "--threads", 4, "{port}"]}).command[2] == "4"
    # the same field on every generating stage config, from a --config mapping or key=value
    from selfprompt.annotate.run import AnnotateConfig
    from selfprompt.cliconfig import load_stage_config
    from selfprompt.evaluate.judge import AnswersConfig, JudgeConfig

    for model, required in ((AnnotateConfig, ["out=x.jsonl"]), (EvalConfig, ["tasks=gsm8k"])):
        assert load_stage_config(model, overrides=[*required, "server=vllm"]).server.preset == "vllm"
    for model in (AnswersConfig, JudgeConfig):
        assert load_stage_config(model, overrides=["out=o", "server={preset: llamacpp}"]).server.preset == "llamacpp"


def test_the_key_of_a_served_model_is_its_content_and_the_command_not_the_port(default_model, tmp_path):
    server = ServerConfig.model_validate("llamacpp")
    a = ManagedServer(server, "default", tmp_path / "a.log")
    b = ManagedServer(server, "default", tmp_path / "b.log")
    a.port, b.port = 1234, 4321
    assert a.model_id == b.model_id and a.model_id.startswith(default_model.model_id)
    other = ServerConfig.model_validate({"preset": "llamacpp", "args": ["--n_batch", "64"]})
    assert ManagedServer(other, "default", tmp_path / "c.log").model_id != a.model_id


def test_selfprompt_serve_gets_the_embedded_default_by_name_so_it_runs_its_batching_engine():
    # Given the GGUF file, `selfprompt serve` would pick llama.cpp (one request at a time, no usage in streams).
    shown = describe_command(ServerConfig(preset="selfprompt"), "default")
    assert "--model default " in shown and ".gguf" not in shown


def test_dry_run_shows_the_command_with_the_port_as_a_placeholder(tmp_path):
    shown = describe_command(
        ServerConfig.model_validate({"preset": "vllm", "args": ["--data-parallel-size", "8"]}),
        str(tmp_path / "train" / "model"),
    )
    assert shown.startswith(f"vllm serve {tmp_path / 'train' / 'model'} ") and "--port '{port}'" in shown
    assert "--data-parallel-size 8" in shown and "--enable-lora" in shown  # said for an adapter


@pytest.mark.parametrize(
    ("server", "conditions", "no_trigger", "match"),
    [
        ("llamacpp", ["self-prompt-no-role"], True, "condition self-prompt-no-role needs an assistant prefill"),
        ("llamacpp", ["icl-self-prompt"], True, "condition icl-self-prompt needs an assistant prefill"),
        ("llamacpp", ["plain"], False, "the trigger pass of gsm8k needs an assistant prefill"),
        ("selfprompt", ["self-prompt"], True, "reads the role from the model's text"),
    ],
)
def test_what_the_server_cannot_do_is_refused_before_it_starts(
    server, conditions, no_trigger, match, data_dir, tmp_path
):
    out = str(tmp_path / "e")
    config = EvalConfig(
        tasks=["gsm8k"], conditions=conditions, no_trigger=no_trigger, out=out, server=server, data_dir=str(data_dir)
    )
    with pytest.raises(ConfigError, match=match):
        run_eval(config)
    assert not (tmp_path / "e" / SERVER_LOG).exists(), "refused before any server started"


def test_vllm_may_prefill_and_a_served_experiment_refuses_at_planning(tmp_path):
    from selfprompt.evaluate.runner import check_server
    from selfprompt.experiment.runner import plan
    from selfprompt.experiment.spec import Experiment

    check_server(EvalConfig(tasks=["gsm8k"], conditions=["self-prompt-no-role"], server="vllm"))  # no error
    spec = {
        "name": "x",
        "report": False,
        "answers": {"server": "llamacpp", "systems": {"a": {"model": "default", "condition": "self-prompt-no-role"}}},
    }
    with pytest.raises(ConfigError, match="experiment section 'answers': condition self-prompt-no-role"):
        plan(Experiment.model_validate(spec), tmp_path, None)


# ---------------------------------------------------------------------------------------------
# Real servers


def test_a_server_that_never_answers_fails_within_its_timeout_with_its_log_tail(default_model, tmp_path):
    command = [sys.executable, "-c", "print('booting the fake engine', flush=True); import time; time.sleep(60)"]
    server = ServerConfig(command=[*command, "{port}"], start_timeout=3, stop_timeout=2)
    log = tmp_path / SERVER_LOG
    started = time.monotonic()
    with pytest.raises(ServerStartError, match="did not answer .* within 3s") as info:
        ManagedServer(server, "default", log).start()
    assert time.monotonic() - started < 3 + 2 + 5, "the timeout, the stop grace and little more"
    assert "booting the fake engine" in str(info.value) and str(log) in str(info.value)
    (pid,) = server_pids(log)
    assert gone(pid, timeout=5), "the never-healthy server was stopped"


def test_the_log_tail_of_an_error_shows_this_start_only(default_model, tmp_path):
    log = tmp_path / SERVER_LOG
    for marker in ("first start", "second start"):
        command = [sys.executable, "-c", f"print('{marker}', flush=True); import time; time.sleep(60)", "{port}"]
        with pytest.raises(ServerStartError) as info:
            ManagedServer(ServerConfig(command=command, start_timeout=2, stop_timeout=1), "default", log).start()
    assert "second start" in str(info.value) and "first start" not in str(info.value)
    assert "first start" in log.read_text(), "the log itself keeps every start"


def test_a_server_that_is_healthy_but_fails_requests_is_named_with_its_log(default_model, data_dir, tmp_path):
    """A health check that answers and a chat endpoint that does not (Python's file server answers GET only)."""
    www = tmp_path / "www"
    (www / "v1").mkdir(parents=True)
    (www / "v1" / "models").write_text('{"data": []}')
    command = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(www), "{port}"]
    out = tmp_path / "eval"
    config = EvalConfig(
        tasks=["gsm8k"], limit=1, max_tokens=4, no_trigger=True, out=str(out), data_dir=str(data_dir),
        server={"command": command, "health": "/v1/models", "start_timeout": 30},
    )  # fmt: skip
    with pytest.raises(SelfPromptError, match=r"failed a request of this stage \(InternalServerError") as info:
        run_eval(config)
    assert str(out / SERVER_LOG) in str(info.value) and '"POST /v1/chat/completions' in str(info.value)
    (pid,) = server_pids(out / SERVER_LOG)
    assert gone(pid, timeout=10)


@pytest.mark.llamacpp
def test_eval_on_a_managed_llamacpp_server_keeps_its_log_and_leaves_nothing_running(data_dir, tmp_path):
    pytest.importorskip("llama_cpp")
    out = tmp_path / "eval"
    config = EvalConfig(
        tasks=["gsm8k"], limit=2, max_tokens=12, no_trigger=True, out=str(out), data_dir=str(data_dir),
        server={"preset": "llamacpp", "start_timeout": 120},
    )  # fmt: skip
    results = run_eval(config)
    assert results["tasks"]["gsm8k"]["conditions"]["plain"]["n"] == 2
    assert results["backend"] == "openai" and "~llamacpp:" in results["model"]
    log = out / SERVER_LOG
    assert "llama_cpp.server" in log.read_text() and "POST /v1/chat/completions" in log.read_text()
    (pid,) = server_pids(log)
    assert gone(pid, timeout=5), "the server and its group are gone once the stage ends"
    rows = (out / "generations" / "gsm8k__plain.jsonl").read_text().splitlines()
    assert len(rows) == 2 and all(json.loads(r)["model"] == results["model"] for r in rows)


@pytest.mark.llamacpp
def test_eval_against_a_running_server_with_the_batch_size_unset(llama_server, data_dir, tmp_path):
    """No server setting, no batch size (the default): the openai backend has none of its own, so eval uses 8."""
    out = tmp_path / "eval"
    config = EvalConfig(
        model="default", backend="openai", base_url=llama_server, tasks=["gsm8k"], limit=2, max_tokens=6,
        no_trigger=True, out=str(out), data_dir=str(data_dir),
    )  # fmt: skip
    assert config.batch_size is None
    results = run_eval(config)
    assert results["tasks"]["gsm8k"]["conditions"]["plain"]["n"] == 2 and results["backend"] == "openai"


@pytest.mark.llamacpp
@pytest.mark.slow
def test_kill_minus_9_of_the_runner_leaves_no_server_and_the_rerun_resumes_from_the_cache(data_dir, tmp_path):
    pytest.importorskip("llama_cpp")
    limit = 4
    spec = {
        "name": "served",
        "report": False,
        "data_dir": str(data_dir),
        "eval": {
            "tasks": ["gsm8k"],
            "limit": limit,
            "max_tokens": 16,
            "no_trigger": True,
            "batch_size": 1,  # one durable row per request: the kill lands between rows
            "server": {"preset": "llamacpp", "start_timeout": 120},
            "systems": {"plain": {"model": "default", "conditions": ["plain"]}},
        },
    }
    spec_path = tmp_path / "served.yaml"
    spec_path.write_text(yaml.safe_dump(spec))
    root = tmp_path / "run"
    runner = subprocess.Popen([*CLI, "run", str(spec_path), "--out", str(root)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.STDOUT)  # fmt: skip
    deadline = time.monotonic() + 300
    cache = None
    while time.monotonic() < deadline and runner.poll() is None:
        found = list(root.glob("eval-plain-*/generations/gsm8k__plain.jsonl"))
        if found and found[0].read_text().count("\n") >= 1:
            cache = found[0]
            break
        time.sleep(0.05)
    assert cache is not None, "the served eval wrote generations"
    os.kill(runner.pid, signal.SIGKILL)  # the runner only: its stage and the server must follow by themselves
    runner.wait()
    before = cache.read_text().splitlines()
    assert 1 <= len(before) < limit, "killed while the eval ran"
    (pid,) = server_pids(cache.parent.parent / SERVER_LOG)
    assert gone(pid, timeout=20), f"server {pid} or a process of its group outlived the killed runner"

    rerun = subprocess.run([*CLI, "run", str(spec_path), "--out", str(root)], capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    after = cache.read_text().splitlines()
    # The cache is append-only and keyed by content: a rerun whose keys changed (e.g. with the port) would
    # append every item again; this one appended only the missing ones.
    assert after[: len(before)] == before and len(after) == limit
    assert len({json.loads(r)["key"] for r in after}) == limit
    pids = server_pids(cache.parent.parent / SERVER_LOG)
    assert len(pids) == 2 and gone(pids[1], timeout=5)
    results = json.loads((cache.parent.parent / "results.json").read_text())
    assert results["tasks"]["gsm8k"]["conditions"]["plain"]["n"] == limit


@pytest.mark.parametrize("name", ["paper-mistral-7b", "paper-llama2-7b"])
def test_paper_dry_run_prints_the_vllm_command_of_every_served_stage(name, tmp_path):
    from selfprompt.experiment.runner import plan_only
    from selfprompt.experiment.spec import load_experiment

    path = Path(__file__).resolve().parents[1] / "experiments" / f"{name}.yaml"
    lines = {line.split()[1]: line for line in plan_only(load_experiment(path), path, tmp_path / "run")}
    served = [s for s in lines if s.startswith(("eval-", "answers-"))]
    assert len(served) == 4
    for stage in served:
        train = "train-self-prompt" if stage.endswith("self-prompt") else "train-baseline"
        server = lines[stage].split("server: ", 1)[1]
        assert server.startswith(f"vllm serve {tmp_path / 'run'}/{train}-") and "/model --host 127.0.0.1" in server
        assert "--port '{port}'" in server and "--data-parallel-size 8" in server
    assert all("server:" not in lines[s] for s in lines if s not in served)  # teacher and judge: the OpenAI API
