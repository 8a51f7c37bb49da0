"""Train stages launched by the runner (`train.launch`): `accelerate launch` with 2 real CPU processes (torchrun's
launcher, DDP over gloo), a rerun that relaunches nothing, one stage per node as recipes/slurm/train.sbatch runs
it (two machines simulated on this host), the stage key, the run lock.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from selfprompt.errors import ConfigError
from selfprompt.experiment.runner import (
    DONE_FILE,
    JOB_MACHINES_ENV,
    RunLock,
    Stage,
    assign_keys,
    plan,
    plan_only,
    run_experiment,
    run_stage,
)
from selfprompt.experiment.spec import Experiment, load_experiment
from selfprompt.generate.servers import SERVER_LOG

REPO = Path(__file__).resolve().parents[1]
CPU_RECIPE = REPO / "recipes" / "smollm2-135m-lora-cpu.yaml"
SBATCH = REPO / "recipes" / "slurm" / "train.sbatch"
STAGE = "train-self-prompt"
CLI = [sys.executable, "-c", "from selfprompt.cli import main; main()"]  # this checkout's selfprompt


def launched(role_file: Path | str, data_dir: Path, **launch) -> dict:
    """An experiment of one train stage (no annotate: the rows come from `role_file`), launched as `launch` says;
    tiny: 4 rows, 2 steps of 1 row per process, short sequences."""
    return {
        "name": "launched",
        "data_dir": str(data_dir),
        "report": False,
        "train": {
            "recipe": str(CPU_RECIPE),
            "modes": ["self-prompt"],
            "overrides": {
                "data": str(role_file),
                "max_rows": 4,
                "per_device_batch_size": 1,
                "max_steps": 2,
                "max_length": 112,
                "save_steps": 1000,
            },
            "launch": launch,
        },
    }


def write_spec(tmp_path: Path, spec: dict) -> Path:
    path = tmp_path / "launched.yaml"
    path.write_text(json.dumps(spec))  # JSON is YAML
    return path


def train_key(spec: dict, data_dir: Path) -> str:
    stages = plan(Experiment.model_validate(spec), REPO, data_dir)
    assign_keys(stages)
    return next(s.key for s in stages if s.name == STAGE)


@pytest.fixture(scope="module")
def role_file(data_dir, tmp_path_factory):
    from selfprompt.jsonl import write_records
    from selfprompt.train.template_roles import lima_template_roles

    path = tmp_path_factory.mktemp("lima_role") / "lima-role.jsonl"
    write_records(path, lima_template_roles(data_dir / "lima" / "train.jsonl"))
    return path


# ---------------------------------------------------------------------------------------------
# Planning: the key, the command, the errors (no model)


def test_what_changes_the_model_changes_the_key_and_where_processes_meet_does_not(data_dir, tmp_path):
    rows = tmp_path / "rows.jsonl"
    unlaunched = launched(rows, data_dir)
    del unlaunched["train"]["launch"]
    plain = train_key(unlaunched, data_dir)
    two = train_key(launched(rows, data_dir, num_processes=2), data_dir)
    assert two != plain
    assert train_key(launched(rows, data_dir, num_processes=2, main_process_port=29611), data_dir) == two
    assert train_key(launched(rows, data_dir, num_processes=4), data_dir) != two
    assert train_key(launched(rows, data_dir, num_processes=2, mixed_precision="bf16"), data_dir) != two

    nodes = {"num_processes": 4, "num_machines": 2}
    rank0 = train_key(launched(rows, data_dir, **nodes, main_process_ip="10.0.0.1"), data_dir)
    rank1 = train_key(
        launched(rows, data_dir, **nodes, machine_rank=1, main_process_ip="n1", main_process_port=1), data_dir
    )
    assert rank0 == rank1 and rank0 != train_key(launched(rows, data_dir, num_processes=4), data_dir)

    # A config file counts by content: the same file elsewhere keeps the key, an edit changes it.
    config = tmp_path / "fsdp.yaml"
    shutil.copy(REPO / "recipes" / "accelerate" / "fsdp.yaml", config)
    shipped = train_key(launched(rows, data_dir, config_file="fsdp"), data_dir)
    assert train_key(launched(rows, data_dir, config_file=str(config)), data_dir) == shipped
    config.write_text(
        config.read_text().replace("fsdp_reshard_after_forward: true", "fsdp_reshard_after_forward: false")
    )
    assert train_key(launched(rows, data_dir, config_file=str(config)), data_dir) != shipped


def test_dry_run_prints_the_accelerate_commands_of_the_paper_experiments():
    for name, config in (("paper-mistral-7b", "deepspeed-zero3"), ("paper-llama2-7b", "fsdp")):
        proc = subprocess.run(
            [*CLI, "run", str(REPO / "experiments" / f"{name}.yaml"), "--dry-run"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        commands = [line.strip() for line in proc.stderr.splitlines() if "accelerate launch" in line]
        assert len(commands) == 2, proc.stderr
        config_file = REPO / "recipes" / "accelerate" / f"{config}.yaml"
        for mode, command in zip(("self-prompt", "baseline"), commands):
            assert command.startswith(
                f"accelerate launch --config_file {config_file} --num_processes 8 --num_machines 1"
            )
            assert " -m selfprompt.train --config " in command and " --resume auto " in command
            assert f" mode={mode} " in command


def test_bad_launches_fail_before_anything_runs(data_dir, tmp_path, monkeypatch):
    rows = tmp_path / "rows.jsonl"
    root = tmp_path / "run"

    def run(spec: dict, only: str | None = STAGE) -> None:
        run_experiment(Experiment.model_validate(spec), tmp_path / "x.yaml", root, log=lambda line: None, only=only)

    with pytest.raises(ConfigError, match="no such stage.*train-self-prompt"):
        run(launched(rows, data_dir, num_processes=2), only="train-nothing")
    with pytest.raises(ConfigError, match="add --stage train-self-prompt"):
        run(launched(rows, data_dir, num_processes=2, num_machines=2, machine_rank=1, main_process_ip="h"), only=None)
    with pytest.raises(ConfigError, match="need main_process_ip"):
        run(launched(rows, data_dir, num_processes=2, num_machines=2))
    monkeypatch.setenv(JOB_MACHINES_ENV, "3")
    with pytest.raises(ConfigError, match="this job has 3 machines but the stage is planned for 2"):
        run(launched(rows, data_dir, num_processes=2, num_machines=2, main_process_ip="h"))
    monkeypatch.delenv(JOB_MACHINES_ENV)
    with pytest.raises(ConfigError, match="multiple of num_machines"):
        run(launched(rows, data_dir, num_processes=3, num_machines=2, main_process_ip="h"))
    with pytest.raises(ConfigError, match="no shipped accelerate config.*deepspeed-zero3"):
        run(launched(rows, data_dir, config_file="zero3"))
    with pytest.raises(ConfigError, match="set num_processes"):
        run(launched(rows, data_dir, mixed_precision="bf16"))
    assert not any(root.glob("train-*")), "nothing ran"

    paper = load_experiment(REPO / "experiments" / "paper-mistral-7b.yaml")
    with pytest.raises(ConfigError, match="--stage train-self-prompt needs annotate done first"):
        run_experiment(paper, REPO / "experiments" / "paper-mistral-7b.yaml", root, log=lambda line: None, only=STAGE)


def test_a_one_stage_run_shares_the_folder_with_other_stages_but_not_with_a_whole_run(tmp_path):
    with RunLock(tmp_path, STAGE):
        with RunLock(tmp_path, "train-baseline"):  # two SLURM jobs, one mode each
            pass
        with pytest.raises(ConfigError, match="another `selfprompt run` is using stage 'train-self-prompt'"):
            RunLock(tmp_path, STAGE).__enter__()
        with pytest.raises(ConfigError, match="another `selfprompt run` is using"):
            RunLock(tmp_path).__enter__()
    with RunLock(tmp_path):
        with pytest.raises(ConfigError, match="another `selfprompt run` is using"):
            RunLock(tmp_path, STAGE).__enter__()


def test_machine_rank_above_0_runs_its_launch_and_leaves_done_json_to_rank_0(tmp_path):
    """The real launcher, on a command that ends at once (`--help`): only rank 0 marks the stage done."""
    for rank in (1, 0):
        folder = tmp_path / f"rank{rank}"
        stage = Stage(STAGE, ["train", "--help"], launch=["--num_processes", "1"], machine_rank=rank, key="k" * 64)
        run_stage(stage, ["train", "--help"], folder, {**os.environ})
        log = "stage.log" if rank == 0 else "stage.machine1.log"
        assert "Fine-tune a model on LIMA-Role" in (folder / log).read_text()
        assert "accelerate launch --num_processes 1 -m selfprompt.train --help" in (folder / log).read_text()
        assert (folder / DONE_FILE).exists() == (rank == 0)


def fake_slurm(tmp_path: Path, nodes: list[str]) -> dict[str, str]:
    """scontrol and srun as SLURM runs them for the batch script (srun: one task per node, one after the other,
    each with its SLURM_NODEID), and `selfprompt` as this checkout's CLI."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scripts = {
        "scontrol": "#!/bin/bash\n[ \"$1 $2\" = 'show hostnames' ] || exit 2\nprintf '%s\\n' " + " ".join(nodes) + "\n",
        "srun": (
            "#!/bin/bash\nwhile [[ $1 == --* ]]; do shift; done\n"
            'for id in $(seq 0 $((SLURM_NNODES - 1))); do SLURM_NODEID=$id "$@" || exit $?; done\n'
        ),
        "selfprompt": f"#!/bin/bash\nexec {sys.executable} -c 'from selfprompt.cli import main; main()' \"$@\"\n",
    }
    for name, text in scripts.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(stat.S_IRWXU)
    return {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "SLURM_JOB_NODELIST": "gpu[07-08]",
        "SLURM_NNODES": str(len(nodes)),
        "MAIN_PROCESS_PORT": "29611",
    }


def test_the_sbatch_script_runs_on_each_node_the_command_dry_run_prints_for_it(data_dir, tmp_path):
    spec = write_spec(tmp_path, launched(tmp_path / "rows.jsonl", data_dir, num_processes=16, num_machines=2))
    root = tmp_path / "run"
    proc = subprocess.run(
        ["bash", str(SBATCH), str(spec), STAGE, f"--out={root}", "--dry-run"],
        env=fake_slurm(tmp_path, ["gpu07", "gpu08"]),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    shown = [line for line in proc.stderr.splitlines() if "accelerate launch" in line]
    assert len(shown) == 2, proc.stderr
    for rank, line in enumerate(shown):
        per_node = ["train.launch.main_process_ip=gpu07", "train.launch.main_process_port=29611"]
        exp = load_experiment(spec, [*per_node, f"train.launch.machine_rank={rank}"])
        expected = plan_only(exp, spec, root, only=STAGE)[0].splitlines()[1]
        assert line == expected
        flags = (
            "--num_processes 16 --num_machines 2 --machine_rank {} --main_process_ip gpu07 --main_process_port 29611"
        )
        assert f"accelerate launch --multi_gpu {flags.format(rank)} -m selfprompt.train" in line

    # A job with another node count stops before anything starts.
    (tmp_path / "three").mkdir()
    env = fake_slurm(tmp_path / "three", ["gpu07", "gpu08", "gpu09"])
    proc = subprocess.run(
        ["bash", str(SBATCH), str(spec), STAGE, f"--out={root}"], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode != 0 and "this job has 3 machines but the stage is planned for 2" in proc.stderr
    assert not root.exists() or not any(root.glob("train-*"))


# ---------------------------------------------------------------------------------------------
# Real launched training on 2 CPU processes


@pytest.mark.slow
def test_the_runner_launches_two_processes_and_a_rerun_launches_nothing(role_file, data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # two processes on a small machine
    spec = launched(role_file, data_dir, num_processes=2)
    path = write_spec(tmp_path, spec)
    root = tmp_path / "run"
    out = io.StringIO()
    lines: list[str] = []
    outcome = run_experiment(Experiment.model_validate(spec), path, root, log=lines.append, console=Console(file=out))
    assert isinstance(outcome[STAGE], float)
    folder = next(root.glob(f"{STAGE}-*"))
    summary = json.loads((folder / "model" / "train_summary.json").read_text())
    assert summary["num_processes"] == 2 and summary["global_step"] == 2
    hashes = [(folder / "model" / f"params_sha256.rank{r}.txt").read_text() for r in (0, 1)]
    assert hashes[0] == hashes[1], "both processes end with the same weights"
    # Events from rank 0 only reach the runner's line: 2 steps, not 4.
    assert re.search(rf"{STAGE}: train  2/2 steps", out.getvalue()), out.getvalue()
    log = (folder / "stage.log").read_text()
    assert log.count("=== ") == 1 and "accelerate launch --multi_gpu --num_processes 2" in log
    done = json.loads((folder / DONE_FILE).read_text())
    done_at = (folder / DONE_FILE).stat().st_mtime_ns

    lines.clear()
    outcome = run_experiment(Experiment.model_validate(spec), path, root, log=lines.append, console=Console(file=out))
    assert outcome == {STAGE: "skipped"} and lines == [f"[skip] {STAGE} (done: {folder.name})"]
    assert (folder / DONE_FILE).stat().st_mtime_ns == done_at and json.loads((folder / DONE_FILE).read_text()) == done
    assert (folder / "stage.log").read_text() == log, "nothing relaunched"


@pytest.mark.slow
def test_two_machines_run_one_stage_and_a_later_whole_run_takes_it_as_done(role_file, data_dir, tmp_path):
    """Two `selfprompt run --stage` invocations as two nodes would run them (here both on this host, one process
    each): node 1 runs while node 0's run holds the stage's lock, and only node 0 marks the stage done."""
    from conftest import free_port

    path = write_spec(tmp_path, launched(role_file, data_dir, num_processes=2, num_machines=2))
    root = tmp_path / "run"
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", JOB_MACHINES_ENV: "2"}

    def node(rank: int) -> subprocess.Popen:
        per_node = [f"train.launch.machine_rank={rank}", "train.launch.main_process_ip=127.0.0.1"]
        command = [*CLI, "run", str(path), "--stage", STAGE, "--out", str(root), *per_node]
        command.append(f"train.launch.main_process_port={port}")
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    with RunLock(root, STAGE):  # as node 0's run holds it
        second = node(1)
        deadline = time.monotonic() + 120
        while not list(root.glob(f"{STAGE}-*/stage.machine1.log")) and second.poll() is None:
            assert time.monotonic() < deadline, "node 1 did not start"
            time.sleep(0.5)
    first = node(0)
    outputs = [p.communicate(timeout=900)[0] for p in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], [o[-3000:] for o in outputs]
    folder = next(root.glob(f"{STAGE}-*"))
    assert "--machine_rank 1 --main_process_ip 127.0.0.1" in (folder / "stage.machine1.log").read_text()
    summary = json.loads((folder / "model" / "train_summary.json").read_text())
    assert summary["num_processes"] == 2 and summary["global_step"] == 2
    done = json.loads((folder / DONE_FILE).read_text())
    assert folder.name.endswith(done["key"][:12])

    # The whole run, without any node's settings: the same key, so the stage is done.
    proc = subprocess.run(
        [*CLI, "run", str(path), "--out", str(root)], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"[skip] {STAGE}" in proc.stderr and "[run ]" not in proc.stderr


def stage_processes(folder_part: str) -> list[int]:
    """Process ids whose command line names `folder_part` (the launcher and its workers)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and folder_part in (proc / "cmdline").read_text():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


@pytest.mark.slow
def test_kill_minus_9_of_the_runner_leaves_no_launched_process_and_the_rerun_finishes(role_file, data_dir, tmp_path):
    path = write_spec(tmp_path, launched(role_file, data_dir, num_processes=2))
    root = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    runner = subprocess.Popen(
        [*CLI, "run", str(path), "--out", str(root)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 300
    while len(stage_processes(str(root))) < 3:  # the launcher and both workers
        assert runner.poll() is None and time.monotonic() < deadline, "the launched stage did not start"
        time.sleep(0.5)
    runner.kill()
    runner.wait()
    deadline = time.monotonic() + 30
    while stage_processes(str(root)) and time.monotonic() < deadline:
        time.sleep(0.5)
    orphans = stage_processes(str(root))
    for pid in orphans:  # never leave a failed test's trainers behind
        os.kill(pid, signal.SIGKILL)
    assert orphans == [], "a launched process outlived the runner"
    folder = next(root.glob(f"{STAGE}-*"))
    assert not (folder / DONE_FILE).exists()

    proc = subprocess.run([*CLI, "run", str(path), "--out", str(root)], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((folder / "model" / "train_summary.json").read_text())["global_step"] == 2
    assert (folder / DONE_FILE).exists()


def test_a_launched_process_whose_runner_is_gone_stops_at_start(tmp_path):
    """Killed while its workers start, before they ask to die with their launcher: they must not train on."""
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid that no longer runs
    command = [sys.executable, "-m", "selfprompt.train", "--help"]
    for runner, expected in ((gone.pid, 1), (os.getpid(), 0)):
        env = {**os.environ, "LOCAL_RANK": "0", "SELFPROMPT_RUNNER_PID": str(runner)}
        proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == expected, proc.stderr[-2000:]
        assert ("Fine-tune a model on LIMA-Role" in proc.stdout) == (expected == 0)


# ---------------------------------------------------------------------------------------------
# Issue 13's acceptance: launched training and served inference in one study


@pytest.mark.llamacpp
@pytest.mark.slow
def test_a_study_with_launched_training_and_managed_servers_runs_and_a_rerun_does_nothing(
    role_file, data_dir, tmp_path, monkeypatch
):
    """Train on 2 processes under `accelerate launch`, eval on a managed llama.cpp server, and the trained adapter's
    open-ended answers from a managed `selfprompt serve`: all started and stopped by the runner; a rerun runs
    nothing and starts no process."""
    pytest.importorskip("llama_cpp")
    from test_servers import gone, server_pids

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    spec = launched(role_file, data_dir, num_processes=2)
    spec["eval"] = {
        "tasks": ["gsm8k"],
        "limit": 2,
        "max_tokens": 12,
        "no_trigger": True,  # llama.cpp's server cannot continue a prefill: the trigger pass would be refused
        "server": {"preset": "llamacpp", "start_timeout": 180},
        "systems": {"default": {"model": "default", "conditions": ["plain"]}},
    }
    spec["answers"] = {
        "questions": "vicuna_bench",
        "limit": 1,
        "max_tokens": 8,
        "server": {"preset": "selfprompt", "start_timeout": 300},
        "systems": {"tuned": {"model": "train:self-prompt", "condition": "plain"}},
    }
    path = write_spec(tmp_path, spec)
    root = tmp_path / "run"
    lines: list[str] = []
    outcome = run_experiment(
        Experiment.model_validate(spec), path, root, log=lines.append, console=Console(file=io.StringIO())
    )
    assert set(outcome) == {STAGE, "eval-default", "answers-tuned"}
    assert all(isinstance(seconds, float) for seconds in outcome.values()), outcome
    train = next(root.glob(f"{STAGE}-*"))
    assert "accelerate launch --multi_gpu --num_processes 2" in (train / "stage.log").read_text()
    assert json.loads((train / "model" / "train_summary.json").read_text())["num_processes"] == 2

    evaluation = next(root.glob("eval-default-*"))
    results = json.loads((evaluation / "results.json").read_text())
    assert results["tasks"]["gsm8k"]["conditions"]["plain"]["n"] == 2 and "~llamacpp:" in results["model"]
    answers = next(root.glob("answers-tuned-*"))
    rows = [json.loads(r) for r in (answers / "answers.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["answer"].strip()
    served = [server_pids(folder / SERVER_LOG) for folder in (evaluation, answers)]
    assert [len(pids) for pids in served] == [1, 1], "one server started per served stage"
    assert all(gone(pids[0], timeout=10) for pids in served), "every server stopped with its stage"
    assert f"--model {train / 'model'}" in (answers / SERVER_LOG).read_text(), "the trained adapter was served"

    logs = {folder: (folder / "stage.log").read_text() for folder in (train, evaluation, answers)}
    server_logs = {folder: (folder / SERVER_LOG).read_text() for folder in (evaluation, answers)}
    lines.clear()
    outcome = run_experiment(
        Experiment.model_validate(spec), path, root, log=lines.append, console=Console(file=io.StringIO())
    )
    assert outcome == dict.fromkeys((STAGE, "eval-default", "answers-tuned"), "skipped")
    assert all(line.startswith("[skip]") for line in lines), lines
    assert {f: (f / "stage.log").read_text() for f in logs} == logs, "nothing relaunched"
    assert {f: (f / SERVER_LOG).read_text() for f in server_logs} == server_logs, "no server started again"
