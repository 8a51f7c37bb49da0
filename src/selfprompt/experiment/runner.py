"""`selfprompt run`: the whole study from one experiment file, resumable and content-addressed.

The experiment is planned into stages (annotate, train per mode, eval per system, answers per
system, judge, report). Each stage is a `selfprompt` command run in a subprocess; stages talk only
through files. A stage's output folder is named by a key: the sha256 of its command template,
the keys of the stages it reads, the sha256 of its input files (data, task declarations, prompt
files) and the content of the local models it runs (see models.py). So:

* a rerun skips every stage whose folder holds a `done.json` with its key (written last);
* a changed setting changes the key of that stage and of everything downstream, and nothing else;
* a killed run resumes: the unfinished stage is started again in the same folder, and the stage
  commands resume their own work (annotate and eval from their caches, train with `--resume auto`,
  answers from their generation cache, the judge from its request cache).

A stage with a `server` (see selfprompt.generate.servers) starts and stops that server itself, keyed by its
model's content and command, never by its port; `--dry-run` prints the command under the stage's.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from selfprompt.errors import ConfigError, DataError, SelfPromptError
from selfprompt.experiment.spec import MACHINES_HINT, Experiment, LaunchSection
from selfprompt.hashindex import file_sha256
from selfprompt.jsonl import write_json
from selfprompt.manifest import write_manifest
from selfprompt.progress import PROGRESS_FD_ENV, PROGRESS_PATH_ENV, ProgressLine, format_duration, read_events

DONE_FILE = "done.json"
LOG_FILE = "stage.log"
INDEX_FILE = "experiment.json"  # read by `selfprompt report`
KEY_SCHEMA = "selfprompt-stage-v2"  # v2: stage configs as key=value words, whole config in the key
ANNOTATION_FILE = "lima_role.jsonl"
# The shipped accelerate configs, found by name (train.launch.config_file: deepspeed-zero3) from a source checkout.
SHIPPED_ACCELERATE = Path(__file__).resolve().parents[3] / "recipes" / "accelerate"
# Set by recipes/slurm/train.sbatch to the job's node count: a stage planned for other machines must not start.
JOB_MACHINES_ENV = "SELFPROMPT_JOB_MACHINES"
FREE_PORT = "{free_port}"  # a launched stage's --main_process_port on one machine, filled in when it starts
RUNNER_PID_ENV = "SELFPROMPT_RUNNER_PID"  # read by train/__main__.py in each launched process


@dataclass
class Stage:
    name: str  # e.g. "annotate", "train-self-prompt", "eval-baseline"
    args: list[str]  # selfprompt arguments; {out}, {root}, {data_dir}, {stage:NAME} filled in at run time
    deps: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)  # inputs whose content is part of the key (data, prompt files)
    models: list[str] = field(default_factory=list)  # model specs whose content (see models.py) is part of the key
    paths: dict[str, str] = field(default_factory=dict)  # placeholder -> absolute path (not in the key: the
    # content of the file is, so moving a checkout does not rerun anything)
    config: dict[str, Any] = field(default_factory=dict)  # the stage's whole config, defaults included (in the key)
    launch: list[str] = field(default_factory=list)  # `accelerate launch` flags: set, the stage runs under accelerate
    launch_key: dict[str, Any] = field(default_factory=dict)  # what of the launch changes the model (in the key)
    launch_error: str = ""  # why this launch cannot start as given; raised only when the stage is about to run
    machine_rank: int = 0  # one node of a multi-machine stage: only rank 0 marks the stage done
    key: str = ""

    @property
    def folder_name(self) -> str:
        return f"{self.name}-{self.key[:12]}"


# ---------------------------------------------------------------------------------------------
# Planning


def _model_ref(model: str, deps: list[str]) -> str:
    if model.startswith("train:"):
        deps.append(f"train-{model.split(':', 1)[1]}")
        return "{stage:" + deps[-1] + "}/model"
    return model


def _prompt_files(conditions: list[str]) -> list[Path]:
    """The prompt files the conditions read: an edited prompt reruns the stages that use it."""
    from selfprompt.evaluate.roles import condition_files

    return condition_files(conditions)


def _task_files(tasks: list[str]) -> list[Path]:
    from selfprompt.evaluate.tasks import registry

    known = registry()
    return [Path(known[t].source_path) for t in tasks if t in known and known[t].source_path]


def _model_content(spec: str) -> str:
    """A local model's content id (name@hash); other specs (hub ids, server model names) stand for themselves."""
    from selfprompt.errors import ModelNotFoundError
    from selfprompt.models import DEFAULT_MODEL, resolve_model

    if spec != DEFAULT_MODEL and not Path(spec).expanduser().exists():
        return spec
    try:
        return resolve_model(spec).model_id
    except ModelNotFoundError:
        return spec  # the stage itself reports it


def _plain(text: str) -> bool:
    """True when YAML reads `text` back as this same string, unquoted. A placeholder ({out}, {stage:...}) is
    taken as plain: it becomes an absolute path, which YAML reads as a string."""
    if "{" in text and text.startswith("{") and "}" in text:
        return _plain(text[text.index("}") + 1 :] or "x")
    try:
        return bool(text) and text.strip() == text and "," not in text and yaml.safe_load(text) == text
    except yaml.YAMLError:
        return False


def _yaml_value(value: Any) -> str:
    """A value as the YAML text of a key=value word, as short as YAML reads back unchanged: plain strings
    and lists of them bare (`tasks=[gsm8k,mmlu]`), other strings quoted, everything else as JSON (JSON is YAML)."""
    if isinstance(value, str):
        return value if _plain(value) else json.dumps(value)
    if isinstance(value, list) and all(isinstance(v, str) and _plain(v) for v in value):
        return "[" + ",".join(value) + "]"
    return json.dumps(value)


def stage_config(stage: str, section: Any, runner_values: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """A stage's config from its experiment section and the values the runner sets (RUNNER_SETS), checked
    now, before anything runs. Returns (its key=value words, those not at their default; its full content)."""
    from pydantic import ValidationError

    from selfprompt.experiment.spec import RUNNER_SETS, STAGE_CONFIGS

    model = STAGE_CONFIGS[stage]
    values = {k: v for k, v in section.model_dump().items() if k in model.model_fields and k not in RUNNER_SETS[stage]}
    try:
        config = model.model_validate({**values, **runner_values})
    except ValidationError as e:
        first = e.errors()[0]
        raise ConfigError(
            f"experiment section '{stage}': key '{'.'.join(map(str, first['loc']))}': {first['msg']}"
        ) from None
    _check_server(stage, config)
    changed = config.model_dump(mode="json", exclude_defaults=True)
    words = [f"{k}={_yaml_value(v)}" for k, v in changed.items()]
    return words, config.model_dump(mode="json")


def _check_server(stage: str, config: Any) -> None:
    """What a stage's server cannot do is refused when the experiment is planned, not hours later."""
    if getattr(config, "server", None) is None:
        return
    from selfprompt.evaluate.runner import check_server
    from selfprompt.generate.servers import check_prefill, check_served, condition_needs

    try:
        if stage == "eval":
            check_server(config)
            return
        field = {"annotate": "teacher", "judge": "judge"}.get(stage, "model")
        check_served(config.server, config.backend, config.base_url, field=field)
        if stage == "answers":
            check_prefill(config.server, condition_needs(config.condition))
    except ConfigError as e:
        raise ConfigError(f"experiment section '{stage}': {e}") from None


def _runs_locally(model: str, backend: str, base_url: str | None, embedded: str, server: Any = None) -> bool:
    """True when the stage runs a local model (in-process or on a server it starts): its content is in the key."""
    from selfprompt.generate.backends import infer_backend

    if server is not None:
        return True
    return infer_backend(model, backend, base_url=base_url, embedded=embedded) != "openai"  # type: ignore[arg-type]


def _template_file(template: str, base_dir: Path) -> Path:
    """The annotation template's YAML file: a built-in id or a path."""
    from selfprompt.annotate.template import TEMPLATE_DIR

    builtin = TEMPLATE_DIR / f"{template}.yaml"
    return builtin if builtin.is_file() else _path(template, base_dir)


def plan(exp: Experiment, base_dir: Path, data_dir: Path | None) -> list[Stage]:
    """The stages of an experiment, in order. Each stage runs its command with its config as key=value words
    (see stage_config). Relative file paths (recipes, question files) are looked up in the current folder,
    then beside the experiment file (`base_dir`), then in its parent (the repository)."""
    stages: list[Stage] = []
    common = {"seed": exp.seed}
    mirror = {"data_dir": "{data_dir}" if data_dir else None}
    if exp.annotate:
        a = exp.annotate
        files = [data_dir / "lima" / "train.jsonl"] if a.data == "lima" and data_dir else []
        if a.data != "lima":
            files.append(_path(a.data, base_dir))
        paths = {"{data_file}": str(files[-1])} if a.data != "lima" else {}
        words, config = stage_config(
            "annotate",
            a,
            {
                **common,
                **mirror,
                "out": "{out}/" + ANNOTATION_FILE,
                "data": "{data_file}" if a.data != "lima" else "lima",
            },
        )
        files.append(_template_file(a.template, base_dir))  # the teacher's prompt: an edited template reruns it
        local = _runs_locally(a.teacher, a.backend, a.base_url, "llamacpp", a.server)
        stages.append(
            Stage(
                "annotate",
                ["annotate", "--no-progress", *words],
                files=files,
                paths=paths,
                models=[a.teacher] if local else [],
                config=config,
            )
        )
    if exp.train:
        recipe = _path(exp.train.recipe, base_dir)
        for mode in exp.train.modes:
            deps = ["annotate"] if exp.annotate else []
            data = [f"data={{stage:annotate}}/{ANNOTATION_FILE}"] if exp.annotate else []
            overrides = [f"{k}={_yaml_value(v)}" for k, v in exp.train.overrides.items()]
            args = [
                "train",
                "--config",
                "{recipe}",
                "--resume",
                "auto",
                *data,
                f"mode={mode}",
                "output_dir={out}/model",
                *overrides,
            ]
            stage = Stage(f"train-{mode}", args, deps=deps, files=[recipe], paths={"{recipe}": str(recipe)})
            if exp.train.launch:
                stage.launch, stage.launch_key, stage.launch_error = launch_plan(exp.train.launch, base_dir)
                stage.machine_rank = exp.train.launch.machine_rank
            stages.append(stage)
    if exp.eval:
        e = exp.eval
        for label, system in e.systems.items():
            deps: list[str] = []
            model = _model_ref(system.model, deps)
            words, config = stage_config(
                "eval", e, {**common, **mirror, "out": "{out}", "model": model, "conditions": system.conditions}
            )
            local = not deps and _runs_locally(system.model, e.backend, e.base_url, "hf", e.server)
            stages.append(
                Stage(
                    f"eval-{label}",
                    ["eval", *words],
                    deps=deps,
                    config=config,
                    files=_task_files(e.tasks) + _prompt_files(system.conditions),
                    models=[system.model] if local else [],
                )
            )
    if exp.answers:
        s = exp.answers
        files = [] if s.questions in ("vicuna_bench", "mt_bench") else [_path(s.questions, base_dir)]
        questions = s.questions if not files else "{questions}"
        for label, system in s.systems.items():
            deps = []
            model = _model_ref(system.model, deps)
            words, config = stage_config(
                "answers",
                s,
                {
                    **common,
                    **mirror,
                    "out": "{out}",
                    "model": model,
                    "condition": system.condition,
                    "questions": questions,
                },
            )
            local = not deps and _runs_locally(system.model, s.backend, s.base_url, "hf", s.server)
            stages.append(
                Stage(
                    f"answers-{label}",
                    ["judge", "answers", *words],
                    deps=deps,
                    config=config,
                    files=files + _prompt_files([system.condition]),
                    paths={"{questions}": str(files[0])} if files else {},
                    models=[system.model] if local else [],
                )
            )
    if exp.judge:
        j = exp.judge
        for side in (j.a, j.b):
            if not exp.answers or side not in exp.answers.systems:
                raise ConfigError(f"judge compares '{side}', which is not a label under answers.systems")
        words, config = stage_config(
            "judge", j, {**common, "out": "{out}", "a": f"{{stage:answers-{j.a}}}", "b": f"{{stage:answers-{j.b}}}"}
        )
        from selfprompt.evaluate.judge import JUDGE_PROMPT_FILE
        from selfprompt.prompts import prompt_path

        local = _runs_locally(j.judge, j.backend, j.base_url, "llamacpp", j.server)
        stages.append(
            Stage(
                "judge",
                ["judge", *words],
                deps=[f"answers-{j.a}", f"answers-{j.b}"],
                config=config,
                files=[prompt_path(JUDGE_PROMPT_FILE)],
                models=[j.judge] if local else [],
            )
        )
    if exp.report:
        deps = [s.name for s in stages if s.name.startswith(("eval-", "judge"))]
        stages.append(Stage("report", ["report", "{root}", "--out", "{out}"], deps=deps))
    _check_deps(stages)
    return stages


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accelerate_config_file(value: str, base_dir: Path) -> Path:
    """A shipped accelerate config by name (recipes/accelerate/NAME.yaml) or a config file's path."""
    if "/" not in value and not value.endswith((".yaml", ".yml", ".json")):
        for folder in (Path("recipes/accelerate"), base_dir.parent / "recipes" / "accelerate", SHIPPED_ACCELERATE):
            if (folder / f"{value}.yaml").is_file():
                return (folder / f"{value}.yaml").resolve()
        shipped = ", ".join(sorted(p.stem for p in SHIPPED_ACCELERATE.glob("*.yaml"))) or "none found"
        raise ConfigError(f"train.launch.config_file '{value}' is no shipped accelerate config ({shipped}) nor a file")
    return _path(value, base_dir)


def launch_plan(launch: LaunchSection, base_dir: Path) -> tuple[list[str], dict[str, Any], str]:
    """The `accelerate launch` flags of a train stage, what of them enters its key, and why it cannot start as
    given ("" when it can). The key holds what changes the trained model: world size (num_processes, the total
    over all machines), machines, mixed precision and the config file's content; never ranks, hosts or ports.
    Raises ConfigError (DataError for an unreadable config file) on settings that can never run."""
    config: dict[str, Any] = {}
    flags: list[str] = []
    content = None
    if launch.config_file:
        path = accelerate_config_file(launch.config_file, base_dir)
        try:
            config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise DataError(str(path), None, None, f"invalid YAML: {e}") from None
        if not isinstance(config, dict):
            raise DataError(str(path), None, None, "an accelerate config file is a mapping of its settings")
        flags += ["--config_file", str(path)]
        content = file_sha256(path)
    num_processes = launch.num_processes or config.get("num_processes")
    num_machines = launch.num_machines or config.get("num_machines") or 1
    if not num_processes:
        raise ConfigError("train.launch: set num_processes (the total over all machines), or a config_file that does")
    if num_processes % num_machines:
        raise ConfigError(
            f"train.launch: num_processes {num_processes} is the total over all machines: make it a multiple of "
            f"num_machines {num_machines}"
        )
    if launch.machine_rank >= num_machines:
        raise ConfigError(
            f"train.launch: machine_rank {launch.machine_rank} is not below num_machines {num_machines}" + MACHINES_HINT
        )
    if not launch.config_file and num_processes > 1:
        # torchrun's launcher: DDP on GPUs, gloo on a CPU-only machine. (accelerate's --cpu path needs MPI.)
        flags.append("--multi_gpu")
    flags += ["--num_processes", str(num_processes), "--num_machines", str(num_machines)]
    if launch.mixed_precision:
        flags += ["--mixed_precision", launch.mixed_precision]
    if num_machines > 1:
        flags += ["--machine_rank", str(launch.machine_rank)]
        if launch.main_process_ip:
            flags += ["--main_process_ip", launch.main_process_ip]
        if config.get("distributed_type") == "DEEPSPEED":
            # One launcher per node (SLURM starts them), not DeepSpeed's pdsh fan-out from the first node.
            flags += ["--deepspeed_multinode_launcher", "standalone"]
    # On one machine a free port, chosen when the stage starts (FREE_PORT): --dry-run shows the placeholder.
    port = launch.main_process_port or (FREE_PORT if num_machines == 1 else None)
    if port:
        flags += ["--main_process_port", str(port)]
    error = ""
    job_machines = os.environ.get(JOB_MACHINES_ENV)
    if job_machines and job_machines != str(num_machines):
        error = (
            f"train.launch: this job has {job_machines} machines but the stage is planned for {num_machines}; give "
            "num_machines (and num_processes, the total) in the experiment file: they are part of the stage key"
        )
    elif num_machines > 1 and not launch.main_process_ip:
        error = (
            f"train.launch: {num_machines} machines need main_process_ip (the address of machine rank 0); "
            "recipes/slurm/train.sbatch sets it per node"
        )
    elif config.get("distributed_type") == "MULTI_CPU" and not shutil.which("mpirun"):
        error = (
            f"train.launch.config_file {launch.config_file}: accelerate starts MULTI_CPU jobs through mpirun, which is "
            "not installed (without it, ONE process would train); leave config_file unset for torchrun over gloo"
        )
    mixed_precision = launch.mixed_precision or config.get("mixed_precision") or "no"
    key = {
        "num_processes": num_processes,
        "num_machines": num_machines,
        "mixed_precision": mixed_precision,
        "config_file": content,
    }
    return flags, key, error


def stage_command(stage: Stage, args: list[str]) -> list[str]:
    """The argv that runs a stage: the selfprompt command, or for a launched train stage `accelerate launch`
    (of this interpreter's environment) around `-m selfprompt.train`."""
    if stage.launch:
        launch = [str(_free_port()) if word == FREE_PORT else word for word in stage.launch]
        return [sys.executable, "-m", "accelerate.commands.launch", *launch, "-m", "selfprompt.train", *args[1:]]
    return [sys.executable, "-c", "from selfprompt.cli import main; main()", *args]


def shown_command(stage: Stage, args: list[str]) -> str:
    """The stage's command as a user would type it."""
    if stage.launch:
        return shlex.join(["accelerate", "launch", *stage.launch, "-m", "selfprompt.train", *args[1:]])
    return "selfprompt " + shlex.join(args)


def _path(value: str, base_dir: Path) -> Path:
    path = Path(value).expanduser()
    for candidate in (path, base_dir / path, base_dir.parent / path):
        if candidate.is_file():
            return candidate.resolve()
    raise ConfigError(f"file '{value}' not found (looked in the current folder and {base_dir})")


def _check_deps(stages: list[Stage]) -> None:
    seen: set[str] = set()
    for stage in stages:
        missing = [d for d in stage.deps if d not in seen]
        if missing:
            raise ConfigError(f"stage '{stage.name}' needs {', '.join(missing)}, which the experiment does not define")
        seen.add(stage.name)


def assign_keys(stages: list[Stage]) -> None:
    keys: dict[str, str] = {}
    for stage in stages:
        payload = {
            "schema": KEY_SCHEMA,
            "name": stage.name,
            "args": stage.args,
            "config": stage.config,
            "deps": {d: keys[d] for d in stage.deps},
            "files": {p.name: file_sha256(p) for p in stage.files},
            "models": [_model_content(m) for m in stage.models],
        }
        if stage.launch_key:  # absent without a launcher, so that such stages keep their keys
            payload["launch"] = stage.launch_key
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        stage.key = keys[stage.name] = hashlib.sha256(blob.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------------------------
# Running


def is_done(folder: Path, key: str) -> bool:
    try:
        return json.loads((folder / DONE_FILE).read_text())["key"] == key
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return False


def resolve_args(stage: Stage, folders: dict[str, Path], root: Path, data_dir: Path | None) -> list[str]:
    values = {"{out}": str(folders[stage.name]), "{root}": str(root), "{data_dir}": str(data_dir or "")}
    values.update({f"{{stage:{name}}}": str(folder) for name, folder in folders.items()})
    values.update(stage.paths)
    resolved = []
    for arg in stage.args:
        for placeholder, value in values.items():
            arg = arg.replace(placeholder, value)
        resolved.append(arg)
    return resolved


def _die_with_parent() -> None:
    """Child side: get SIGKILL when the runner dies, so a killed run leaves no stage writing behind it."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def stage_log(stage: Stage) -> str:
    """The stage's log file in its folder; the nodes of a multi-machine stage write one each (shared folder)."""
    return LOG_FILE if stage.machine_rank == 0 else f"stage.machine{stage.machine_rank}.log"


def _event_channel(stage: Stage, env: dict[str, str]) -> tuple[int, int, dict[str, str], tuple[int, ...]]:
    """Where the stage's progress events come back: (read end, write end the runner closes, child env, fds to
    pass). A plain stage inherits an anonymous pipe. The processes of `accelerate launch` do not inherit
    descriptors (torchrun starts them with close_fds), so a launched stage gets a named pipe by path; the
    runner holds a write end until the stage exits, so the reader ends only then."""
    if not stage.launch:
        read_end, write_end = os.pipe()
        return read_end, write_end, {**env, PROGRESS_FD_ENV: str(write_end)}, (write_end,)
    fifo = Path(tempfile.mkdtemp(prefix="selfprompt-events-")) / "events"
    os.mkfifo(fifo, 0o600)
    read_end = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # non-blocking: no writer yet
    write_end = os.open(fifo, os.O_WRONLY)
    os.set_blocking(read_end, True)
    child_env = {k: v for k, v in env.items() if k != PROGRESS_FD_ENV}
    # The workers stop at start when the runner is gone (train/__main__.py): killed before they could ask to die
    # with their launcher, they would train on, orphaned.
    child_env[RUNNER_PID_ENV] = str(os.getpid())
    return read_end, write_end, {**child_env, PROGRESS_PATH_ENV: str(fifo)}, ()


def run_stage(
    stage: Stage,
    args: list[str],
    folder: Path,
    env: dict[str, str],
    on_event: Callable[[dict[str, Any]], None] = lambda event: None,
) -> float:
    """Run one stage's command (see stage_command); its output goes to the folder's stage log (see stage_log),
    its progress events (see selfprompt.progress) to `on_event`, from a reader thread. Marks the stage done
    (done.json) on success, except on machine ranks above 0 of a multi-machine stage. Returns the seconds it
    took; raises SelfPromptError with the log's tail when it fails. Ctrl-C stops the stage (it keeps what it
    finished)."""
    folder.mkdir(parents=True, exist_ok=True)
    command = stage_command(stage, args)
    started = time.monotonic()
    read_end, write_end, child_env, pass_fds = _event_channel(stage, env)
    log_path = folder / stage_log(stage)
    with log_path.open("a", encoding="utf-8") as log, os.fdopen(read_end, encoding="utf-8") as events:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {shown_command(stage, args)}\n")
        log.flush()
        try:
            try:
                proc = subprocess.Popen(
                    command,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=child_env,
                    pass_fds=pass_fds,
                    preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
                )
            finally:
                if not stage.launch:
                    os.close(write_end)  # the child holds its copy; the reader sees the end when the child exits
            reader = threading.Thread(target=read_events, args=(events, on_event), daemon=True)
            reader.start()
            try:
                returncode = proc.wait()
            except BaseException:  # Ctrl-C: the stage had it too; do not leave it running behind the runner
                proc.kill()  # a launched stage's workers die with it (train/__main__.py)
                proc.wait()
                raise
        finally:
            if stage.launch:
                os.close(write_end)
                shutil.rmtree(Path(child_env[PROGRESS_PATH_ENV]).parent, ignore_errors=True)
        reader.join(timeout=5)  # a grandchild still holding the pipe must not hang the run
    seconds = time.monotonic() - started
    if returncode != 0:
        tail = log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-25:]
        raise SelfPromptError(f"stage '{stage.name}' failed (exit {returncode}); log {log_path}:\n" + "\n".join(tail))
    if stage.machine_rank == 0:  # the other machines of a stage finish with it; rank 0 speaks for all
        write_json(
            folder / DONE_FILE,
            {
                "stage": stage.name,
                "key": stage.key,
                "args": args,
                "seconds": round(seconds, 2),
                "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            },
        )
    return seconds


def write_index(exp: Experiment, stages: list[Stage], root: Path) -> None:
    """experiment.json: which folder holds what, for `selfprompt report` and for people."""
    folders = {s.name: s.folder_name for s in stages}
    index = {
        "name": exp.name,
        "title": exp.title or f"Self-prompt tuning: {exp.name}",
        "baseline": exp.baseline_label(),
        "evals": {s.name.removeprefix("eval-"): folders[s.name] for s in stages if s.name.startswith("eval-")},
        "judges": ({f"{exp.judge.a} vs {exp.judge.b}": folders["judge"]} if exp.judge else {}),
        "stages": {s.name: {"folder": folders[s.name], "key": s.key, "deps": s.deps} for s in stages},
    }
    write_json(root / INDEX_FILE, index)


class RunLock:
    """One runner per output folder: a second concurrent run would corrupt the first. A run of one stage
    (`--stage`) shares the folder's lock with other one-stage runs and holds that stage's own lock, so two
    SLURM jobs can train two modes at once, while a whole run waits for neither and excludes both. The
    machines above rank 0 of a multi-machine stage take no lock: they are part of rank 0's run."""

    def __init__(self, root: Path, stage: str | None = None):
        root.mkdir(parents=True, exist_ok=True)
        self.root, self.stage = root, stage
        self.files = [(root / ".lock").open("w")] + ([(root / f".lock-{stage}").open("w")] if stage else [])

    def __enter__(self) -> RunLock:
        modes = [fcntl.LOCK_SH if self.stage else fcntl.LOCK_EX, fcntl.LOCK_EX]
        try:
            for file, mode in zip(self.files, modes):
                fcntl.flock(file, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            self.__exit__()
            what = f"stage '{self.stage}' of {self.root}" if self.stage else str(self.root)
            raise ConfigError(f"another `selfprompt run` is using {what}") from None
        return self

    def __exit__(self, *exc) -> None:
        for file in self.files:
            fcntl.flock(file, fcntl.LOCK_UN)
            file.close()


@dataclass
class StageOutcome:
    """One row of the table `selfprompt run` ends with."""

    name: str
    folder: Path
    status: str = "not run"  # done (ran now) | skipped (done before) | failed | interrupted | not run
    seconds: float | None = None  # this run's time; for a skipped stage, the time recorded when it ran


def stage_table(outcomes: list[StageOutcome], root: Path) -> Table:
    """Every stage: status, time, output folder (relative to `root`, named in the title)."""
    styles = {"done": "green", "skipped": "dim", "failed": "bold red", "interrupted": "yellow", "not run": "dim"}
    table = Table(title=f"stages in {root}", title_justify="left")
    for column in ("stage", "status", "time", "output"):
        table.add_column(column, justify="right" if column == "time" else "left")
    for o in outcomes:
        seconds = "" if o.seconds is None else format_duration(o.seconds)
        if o.status == "skipped" and seconds:
            seconds += " (earlier)"
        table.add_row(o.name, f"[{styles[o.status]}]{o.status}[/]", seconds, o.folder.name)
    return table


def _recorded_seconds(folder: Path) -> float | None:
    try:
        return float(json.loads((folder / DONE_FILE).read_text())["seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def select_stages(stages: list[Stage], only: str | None, folders: dict[str, Path], strict: bool = True) -> list[Stage]:
    """Every stage, or with `only` just that one, whose dependencies must be done already. Raises ConfigError
    for an unknown stage and, when `strict` (to run, not to show), for missing dependencies and for a machine
    rank above 0 without `only` (such a node runs one train stage, nothing else)."""
    if only is None:
        ranked = [s for s in stages if s.machine_rank]
        if ranked and strict:
            raise ConfigError(
                f"train.launch.machine_rank={ranked[0].machine_rank} starts one node of one train stage: "
                f"add --stage {ranked[0].name}"
            )
        return stages
    by_name = {s.name: s for s in stages}
    if only not in by_name:
        raise ConfigError(f"--stage {only}: the experiment has no such stage (its stages: {', '.join(by_name)})")
    stage = by_name[only]
    missing = [d for d in stage.deps if not is_done(folders[d], by_name[d].key)]
    if missing and strict:
        raise ConfigError(
            f"--stage {only} needs {', '.join(missing)} done first (run them with `selfprompt run` and the "
            "same file and overrides, or with --stage)"
        )
    return [stage]


def run_experiment(
    exp: Experiment,
    experiment_file: Path,
    root: Path | None = None,
    log: Callable[[str], None] = print,
    console: Console | None = None,
    only: str | None = None,
) -> dict[str, Any]:
    """Plan, skip what is done, run the rest. Returns {stage: "skipped" | seconds}.

    `only` names the one stage to run (`--stage`; see select_stages and RunLock): one node of a multi-machine
    train stage runs it with its train.launch.machine_rank. `log` gets one line per stage ([skip], [run ],
    [done]); `console` (default: stderr) shows the live progress line of the stage in progress, drawn from its
    events, and, at the end or when a stage fails or is interrupted, the table of every stage (see stage_table).
    """
    from selfprompt.data.mirror import resolve_data_dir

    console = console or Console(stderr=True)
    data_dir = resolve_data_dir(exp.data_dir, required=False)
    data_dir = data_dir.resolve() if data_dir else None
    root = (root or Path(exp.out or f"runs/{exp.name}")).resolve()
    stages = plan(exp, experiment_file.resolve().parent, data_dir)
    assign_keys(stages)
    folders = {s.name: root / s.folder_name for s in stages}
    env = {**os.environ}
    if data_dir:
        env["SELFPROMPT_DATA_DIR"] = str(data_dir)
    outcome: dict[str, Any] = {}
    selected = select_stages(stages, only, folders)
    table = [StageOutcome(s.name, folders[s.name]) for s in selected]
    lock = contextlib.nullcontext() if selected[0].machine_rank else RunLock(root, only)
    with lock:
        if only is None:  # the index and manifest describe a whole run
            write_index(exp, stages, root)
            write_manifest(
                root,
                stage="experiment",
                config=exp.model_dump(),
                data_files=[experiment_file],
                seed=exp.seed,
                extra={"stages": {s.name: s.key for s in stages}},
            )
        try:
            for stage, row in zip(selected, table):
                folder = folders[stage.name]
                if is_done(folder, stage.key):
                    outcome[stage.name] = row.status = "skipped"
                    row.seconds = _recorded_seconds(folder)
                    log(f"[skip] {stage.name} (done: {folder.name})")
                    continue
                if stage.launch_error:
                    raise ConfigError(stage.launch_error)
                log(f"[run ] {stage.name} -> {folder.name}")
                row.status, started = "failed", time.monotonic()  # failed until it returns
                with ProgressLine(stage.name, None, console=console, send_events=False, summary=False) as line:

                    def show(event: dict[str, Any], name: str = stage.name, line: ProgressLine = line) -> None:
                        line.update(
                            label=f"{name}: {event['label']}",
                            unit=event.get("unit"),
                            done=event["done"],
                            cached=event.get("cached", 0),
                            total=event.get("total"),
                            detail=event.get("detail", ""),
                            step=event.get("step"),
                            ended=event.get("state") == "end",
                        )

                    seconds = run_stage(stage, resolve_args(stage, folders, root, data_dir), folder, env, show)
                outcome[stage.name] = row.seconds = round(seconds, 2)
                row.status = "done"
                log(f"[done] {stage.name} in {seconds:.1f}s")
        except BaseException as e:
            for row in table:
                if row.status == "failed":  # the stage that was running: its time so far
                    row.seconds = time.monotonic() - started
                    row.status = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
            raise
        finally:
            console.print(stage_table(table, root))
    if "report" in folders:
        log(f"report: {folders['report'] / 'report.html'}")
    return outcome


SERVED_MODEL_FIELD = {"annotate": "teacher", "eval": "model", "answers": "model", "judge": "judge"}


def served_command(stage: Stage, folders: dict[str, Path], root: Path, data_dir: Path | None) -> str | None:
    """The server command a stage would start (its {port} left as a placeholder), or None without a server."""
    from dataclasses import replace

    from selfprompt.generate.servers import ServerConfig, describe_command

    if not stage.config.get("server"):
        return None
    kind = "answers" if stage.args[:2] == ["judge", "answers"] else stage.args[0]
    model = resolve_args(replace(stage, args=[stage.config[SERVED_MODEL_FIELD[kind]]]), folders, root, data_dir)[0]
    return describe_command(ServerConfig.model_validate(stage.config["server"]), model)


def plan_only(exp: Experiment, experiment_file: Path, root: Path | None = None, only: str | None = None) -> list[str]:
    """One line per stage (or for `only`, see select_stages): name, folder, done or not, the command it
    would run (`accelerate launch ...` for a launched train stage) and the server it would start."""
    from selfprompt.data.mirror import resolve_data_dir

    data_dir = resolve_data_dir(exp.data_dir, required=False)
    root = (root or Path(exp.out or f"runs/{exp.name}")).resolve()
    stages = plan(exp, experiment_file.resolve().parent, data_dir)
    assign_keys(stages)
    folders = {s.name: root / s.folder_name for s in stages}
    lines = []
    for s in select_stages(stages, only, folders, strict=False):
        line = (
            f"{'done' if is_done(folders[s.name], s.key) else 'todo'}  {s.name:24} {folders[s.name]}\n"
            f"      {shown_command(s, resolve_args(s, folders, root, data_dir))}"
            + (f"\n      cannot start as given: {s.launch_error}" if s.launch_error else "")
        )
        server = served_command(s, folders, root, data_dir)
        lines.append(line + (f"\n      server: {server}" if server else ""))
    return lines
