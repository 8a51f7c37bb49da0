"""Run untrusted Python (HumanEval completions) so that a hostile program fails only itself.

Layers, each covering what the others might miss:

* a separate process: `python -I` (isolated: no user site, no PYTHON* variables, no cwd on sys.path),
  in its own session/process group, with a fresh temporary directory as cwd and a bare environment;
* when `unshare` works here: new network namespace (no network at all) and a new PID namespace
  (when the sandbox's first process dies, the kernel kills every process it left behind, even ones
  that called setsid);
* resource limits set before the program runs: RLIMIT_AS (memory), RLIMIT_CPU, RLIMIT_NPROC
  (no new processes), RLIMIT_FSIZE (huge output is cut by SIGXFSZ), RLIMIT_CORE=0;
* when started as root: the program runs as `nobody`, so it cannot touch files it does not own;
* a guard in the child (after the limits) that blocks sockets and the destructive os/shutil/
  subprocess functions, as openai/human-eval's `reliability_guard` does;
* a wall-clock timeout after which the whole process group is SIGKILLed.

Output goes to a file in the temp dir (bounded by RLIMIT_FSIZE), and only its tail is kept.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

NOBODY = 65534
# Standard modules that solutions commonly import (all that HumanEval's canonical solutions use, and more).
PRELOAD = ("array", "bisect", "collections", "copy", "datetime", "decimal", "fractions", "functools", "hashlib",
           "heapq", "itertools", "json", "math", "operator", "random", "re", "statistics", "string", "typing",
           "unicodedata", "cmath", "numbers", "textwrap", "shutil", "socket", "subprocess", "builtins")

RUNNER = r'''
import os, resource, sys
limits = {limits!r}
resource.setrlimit(resource.RLIMIT_AS, (limits["memory_bytes"],) * 2)
resource.setrlimit(resource.RLIMIT_CPU, (limits["cpu_seconds"], limits["cpu_seconds"] + 1))
resource.setrlimit(resource.RLIMIT_FSIZE, (limits["max_file_bytes"],) * 2)
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
# Imported while the interpreter's files are still readable: once running as 'nobody', a Python
# installed under a private home (/root/.pyenv) cannot load new stdlib modules.
import {preload}
if os.getuid() == 0 and limits["drop_to"] is not None:
    try:
        os.setgroups([])
        os.setgid(limits["drop_to"])
        os.setuid(limits["drop_to"])
    except OSError:
        pass  # inside a user namespace where 'nobody' is not mapped: the other layers still hold
# After dropping privileges, so root cannot ignore it: no new processes at all.
resource.setrlimit(resource.RLIMIT_NPROC, (limits["max_processes"],) * 2)
source = open("solution.py", encoding="utf-8").read()

import builtins, shutil, socket, subprocess
def _blocked(*args, **kwargs):
    raise PermissionError("blocked by the selfprompt sandbox")
class _NoSocket(socket.socket):
    def __init__(self, *args, **kwargs):
        raise PermissionError("network blocked by the selfprompt sandbox")
socket.socket = _NoSocket
for name in ("create_connection", "socketpair", "fromfd", "create_server"):
    setattr(socket, name, _blocked)
for name in ("kill", "killpg", "system", "fork", "forkpty", "popen", "remove", "unlink", "rmdir",
             "removedirs", "rename", "renames", "replace", "truncate", "ftruncate", "chmod", "chown",
             "lchown", "putenv", "unsetenv", "setuid", "setsid", "execv", "execve", "execvp", "execl",
             "spawnv", "posix_spawn", "posix_spawnp", "symlink", "link"):
    if hasattr(os, name):
        setattr(os, name, _blocked)
shutil.rmtree = shutil.move = shutil.chown = _blocked
subprocess.Popen = subprocess.run = subprocess.call = subprocess.check_output = _blocked
builtins.exit = builtins.quit = _blocked
sys.modules["ctypes"] = None  # no foreign calls around the guard
del builtins, shutil, socket, subprocess, resource
exec(compile(source, "solution.py", "exec"), {{"__name__": "__main__"}})
'''


@dataclass(frozen=True)
class SandboxLimits:
    timeout_s: float = 10.0  # wall clock; the process group is killed after it
    cpu_seconds: int = 10  # RLIMIT_CPU
    memory_bytes: int = 1 << 30  # RLIMIT_AS; Python itself needs ~100 MB of address space
    max_processes: int = 1  # RLIMIT_NPROC for the sandbox user: 1 means no child processes
    max_file_bytes: int = 8 << 20  # RLIMIT_FSIZE: caps output and any file the program writes
    max_output_chars: int = 4000  # tail of stdout+stderr kept in the result


@dataclass(frozen=True)
class SandboxResult:
    status: Literal["passed", "failed", "timeout"]
    returncode: int | None
    output: str  # tail of the program's stdout and stderr
    seconds: float
    isolation: str  # which layers were active, e.g. "unshare-net-pid,nobody"

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@lru_cache(maxsize=1)
def unshare_prefix() -> tuple[str, ...]:
    """The `unshare` command line that works here (root: plain; user: with a user namespace), or ()."""
    exe = shutil.which("unshare")
    if not exe:
        return ()
    base = (exe, "--net", "--pid", "--fork", "--kill-child")
    for prefix in (base, (exe, "--map-root-user", *base[1:])):
        try:
            ok = subprocess.run([*prefix, "true"], capture_output=True, timeout=10).returncode == 0
        except (OSError, subprocess.SubprocessError):
            ok = False
        if ok:
            return prefix
    return ()


def _isolation(prefix: tuple[str, ...]) -> str:
    layers = ["unshare-net-pid" if prefix else "no-namespaces"]
    if os.getuid() == 0 and "--map-root-user" not in prefix:
        layers.append("nobody")
    return ",".join(layers + ["rlimits", "guard"])


def _kill_group(pgid: int, grace_s: float = 5.0) -> None:
    """SIGKILL the whole group and return once it is gone (a killed memory hog takes a moment to exit)."""
    deadline = time.monotonic() + grace_s
    while True:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            return
        if time.monotonic() > deadline:
            return
        time.sleep(0.02)


def _tail(path: Path, chars: int) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - chars * 4))
            return f.read().decode("utf-8", errors="replace")[-chars:]
    except OSError:
        return ""


def run_python(program: str, limits: SandboxLimits = SandboxLimits()) -> SandboxResult:
    """Run `program` in the sandbox; 'passed' means it exited with status 0 within the limits."""
    prefix = unshare_prefix()
    drop_to = NOBODY if os.getuid() == 0 and "--map-root-user" not in prefix else None
    workdir = Path(tempfile.mkdtemp(prefix="selfprompt-sandbox-"))
    try:
        (workdir / "solution.py").write_text(program, encoding="utf-8")
        runner_limits = {"memory_bytes": limits.memory_bytes, "cpu_seconds": limits.cpu_seconds,
                         "max_file_bytes": limits.max_file_bytes, "max_processes": limits.max_processes,
                         "drop_to": drop_to}
        (workdir / "runner.py").write_text(RUNNER.format(limits=runner_limits, preload=", ".join(PRELOAD)), encoding="utf-8")
        if drop_to is not None:  # the sandbox user owns its temp dir and nothing else
            for p in (workdir, *workdir.iterdir()):
                os.chown(p, NOBODY, NOBODY)
        return _execute(prefix, workdir, limits)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _execute(prefix: tuple[str, ...], workdir: Path, limits: SandboxLimits) -> SandboxResult:
    output = workdir.parent / (workdir.name + ".out")  # outside the dir the program can write to
    cmd = [*prefix, sys.executable, "-I", "runner.py"]
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"}
    started = time.perf_counter()
    try:
        with output.open("wb") as out:
            proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            try:
                returncode: int | None = proc.wait(timeout=limits.timeout_s)
                status = "passed" if returncode == 0 else "failed"
            except subprocess.TimeoutExpired:
                returncode, status = None, "timeout"
            finally:
                _kill_group(proc.pid)  # anything it left behind in its group goes too
                proc.wait()
        return SandboxResult(status=status, returncode=returncode, output=_tail(output, limits.max_output_chars),
                             seconds=time.perf_counter() - started, isolation=_isolation(prefix))
    finally:
        output.unlink(missing_ok=True)


def humaneval_program(prompt: str, completion: str, test: str, entry_point: str) -> str:
    """Prompt + completion + the problem's tests. A completion that redefines the whole function
    simply overrides the prompt's stub (a def whose body is only its docstring is valid Python)."""
    return f"{prompt}\n{completion}\n\n{test}\n\ncheck({entry_point})\n"


def check_humaneval(extra: dict, completion: str, limits: SandboxLimits = SandboxLimits()) -> SandboxResult:
    program = humaneval_program(extra["prompt"], completion, extra["test"], extra["entry_point"])
    return run_python(program, limits)
