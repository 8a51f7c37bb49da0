"""Run untrusted Python (HumanEval completions) so that a hostile program fails only itself, and
count a program as passed only on positive proof that it (or the tests) ran to the end.

Layers, each covering what the others might miss:

* a separate process: `python -I` (isolated: no user site, no PYTHON* variables, no cwd on sys.path),
  in its own session/process group, with a fresh temporary directory as cwd and a bare environment;
* when `unshare` works here: new network namespace (no network at all) and a new PID namespace
  (when the sandbox's first process dies, the kernel kills every process it left behind, even ones
  that called setsid);
* resource limits set before the program runs: RLIMIT_AS (memory), RLIMIT_CPU, RLIMIT_NPROC
  (no new processes or threads), RLIMIT_FSIZE (huge output is cut by SIGXFSZ), RLIMIT_CORE=0;
* when started as root: the program runs as `nobody`, so it cannot touch files it does not own;
* a guard in the child that blocks sockets and the destructive os/posix/shutil/subprocess
  functions, as openai/human-eval's `reliability_guard` does;
* a wall-clock timeout after which the whole process group is SIGKILLed.

Passing is proof, not an exit status. The parent hands the child a random nonce through a pipe
that the harness drains and closes before any untrusted code runs, and a proof file descriptor.
The nonce is then held only by an audit hook (`sys.addaudithook`; a hook cannot be removed or
listed), which writes it to the proof descriptor only when the harness signals, with a private
key, the line after the tests returned. The parent requires exactly that nonce and exit status 0.
So `sys.exit(0)`, `os._exit(0)`, a signal, `atexit`, a BaseException, a closed stdout or anything
else that ends the program before the tests' last assert reads as failed.

To keep the tests from being skipped or disarmed by the code they test:

* the tests (`check`) are compiled and defined before the completion runs, in their own
  namespace built from the prompt (so a completion cannot redefine helpers such as `poly`), with a
  copy of the builtins and snapshots of every loaded module taken at that moment (so patching
  `builtins.abs`, `math.fabs` or `sys.modules` later changes nothing the tests see); the module-level
  `random` functions the tests call are methods of a private `Random` instance, not of `random._inst`,
  so patching that shared instance (`_randbelow`, `getrandbits`, its `__class__`) cannot rig their inputs;
* the completion and the tests run in a worker thread: Python lets only the main thread install
  signal handlers (a handler is handed the interrupted frame), and the main thread, which holds
  nothing secret, runs no Python code while the worker runs;
* the audit hook refuses what would reach the harness's frames or memory: `sys._getframe`,
  `sys._current_frames`, traceback/generator/coroutine frames, `sys.settrace`/`setprofile` (a
  tracer can jump over the asserts), `gc` object walks, `ctypes`, `/proc` and `/dev` files,
  symlinks, `chdir`, patching classes that existed before the completion, and swapping a
  function's code;
* every value the function returns to the tests is rebuilt from built-in types (an `int`, `str`,
  `list`, `dict` ... subclass becomes its base type; any other object fails the test), so an object
  whose `__eq__` always answers True cannot satisfy an assert;
* the harness calls only functions it captured before the completion ran.
"""

from __future__ import annotations

import json
import os
import secrets
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
PRELOAD = (
    "array",
    "bisect",
    "collections",
    "copy",
    "datetime",
    "decimal",
    "fractions",
    "functools",
    "hashlib",
    "heapq",
    "itertools",
    "json",
    "math",
    "operator",
    "random",
    "re",
    "statistics",
    "string",
    "typing",
    "unicodedata",
    "cmath",
    "numbers",
    "textwrap",
    "shutil",
    "socket",
    "subprocess",
    "builtins",
)
NONCE_BYTES = 16  # hex-encoded: 32 characters the program never sees

# The harness run in the child. It reads `job.json` ({"limits", "preload", "solution", and for HumanEval
# "prompt", "test", "entry_point"}) and is given the nonce pipe and the proof descriptor as argv[1:3].
RUNNER = r'''
import json, os, resource, sys
job = json.load(open("job.json", encoding="utf-8"))
limits = job["limits"]
resource.setrlimit(resource.RLIMIT_AS, (limits["memory_bytes"],) * 2)
resource.setrlimit(resource.RLIMIT_CPU, (limits["cpu_seconds"], limits["cpu_seconds"] + 1))
resource.setrlimit(resource.RLIMIT_FSIZE, (limits["max_file_bytes"],) * 2)
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
# Imported while the interpreter's files are still readable: once running as 'nobody', a Python
# installed under a private home (/root/.pyenv) cannot load new stdlib modules.
for _name in job["preload"]:
    __import__(_name)
import _thread, builtins, gc, posix, types
if os.getuid() == 0 and limits["drop_to"] is not None:
    try:
        os.setgroups([])
        os.setgid(limits["drop_to"])
        os.setuid(limits["drop_to"])
    except OSError:
        pass  # inside a user namespace where 'nobody' is not mapped: the other layers still hold


def _main(nonce_fd, proof_fd, job):
    # Everything the harness calls once untrusted code has run is captured here, before it runs.
    _exit, _write = posix._exit, posix.write
    try:
        go = _start(nonce_fd, proof_fd, job)
    except BaseException:
        sys.__excepthook__(*sys.exc_info())
        _exit(1)
    forever = _thread.allocate_lock()
    forever.acquire()
    try:
        go.release()  # the worker runs the program; it ends the process, we only wait
        forever.acquire()
    except BaseException:
        pass
    _exit(1)


def _start(nonce_fd, proof_fd, job):
    """Set up the tests, the audit hook and the worker; return the lock that lets the worker start.
    The key and the nonce live only in closures; this frame is gone before untrusted code runs."""
    nonce = b""
    while True:
        piece = posix.read(nonce_fd, 256)
        if not piece:
            break
        nonce += piece
    posix.close(nonce_fd)
    key = object()
    solution = compile(job["solution"], "solution.py", "exec", dont_inherit=True, optimize=0)
    entry_point, check, ns_test = job.get("entry_point"), None, None
    if job.get("test") is not None:
        ns_test = _test_namespace(job["prompt"], job["test"])
        check = ns_test["check"]
    _guard()
    hook = _make_hook(key, nonce, proof_fd)
    work = _make_worker(key, solution, check, ns_test, entry_point)
    go = _thread.allocate_lock()
    go.acquire()
    _thread.start_new_thread(work, (go,))
    # After the worker exists and after dropping privileges (so root cannot ignore it): nothing
    # more, neither processes nor threads.
    resource.setrlimit(resource.RLIMIT_NPROC, (limits["max_processes"],) * 2)
    sys.addaudithook(hook)
    return go


def _test_namespace(prompt, test):
    """The prompt and the tests, defined before the completion runs, seeing a private copy of the
    builtins and of every loaded module as they are now."""
    import random

    real_import = builtins.__import__
    snapshots = {}
    # Module-level random functions are bound methods of one shared instance (random._inst,
    # secrets._sysrand): a completion that patches that instance (its attributes or its __class__)
    # would feed the tests easy inputs. The tests' copies use private instances, seeded from
    # os.urandom, that the completion never sees.
    private = {}

    def own(value):
        if isinstance(value, random.Random):
            if id(value) not in private:
                private[id(value)] = (value, type(value)())  # keep `value` alive so its id stays unique
            return private[id(value)][1]
        if isinstance(value, types.MethodType) and isinstance(value.__self__, random.Random):
            return types.MethodType(value.__func__, own(value.__self__))
        return value

    for name, module in list(sys.modules.items()):
        if isinstance(module, types.ModuleType):
            clone = types.ModuleType(name)
            clone.__dict__.update({k: own(v) for k, v in module.__dict__.items()})
            snapshots[name] = clone

    def _import(name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0 and name in snapshots and (fromlist or "." not in name):
            return snapshots[name]
        return real_import(name, globals, locals, fromlist, level)

    test_builtins = dict(builtins.__dict__)
    test_builtins["__import__"] = _import
    namespace = {"__name__": "humaneval_tests", "__builtins__": test_builtins}
    exec(compile(prompt, "prompt.py", "exec", dont_inherit=True, optimize=0), namespace)
    exec(compile(test, "test.py", "exec", dont_inherit=True, optimize=0), namespace)
    return namespace


def _guard():
    import shutil, socket, subprocess

    def _blocked(*args, **kwargs):
        raise PermissionError("blocked by the selfprompt sandbox")

    class _NoSocket(socket.socket):
        def __init__(self, *args, **kwargs):
            raise PermissionError("network blocked by the selfprompt sandbox")

    socket.socket = _NoSocket
    for name in ("create_connection", "socketpair", "fromfd", "create_server"):
        setattr(socket, name, _blocked)
    for module in (os, posix):
        for name in ("kill", "killpg", "system", "fork", "forkpty", "popen", "remove", "unlink", "rmdir",
                     "removedirs", "rename", "renames", "replace", "truncate", "ftruncate", "chmod", "chown",
                     "lchown", "putenv", "unsetenv", "setuid", "setsid", "execv", "execve", "execvp", "execl",
                     "spawnv", "posix_spawn", "posix_spawnp", "symlink", "link"):
            if hasattr(module, name):
                setattr(module, name, _blocked)
    shutil.rmtree = shutil.move = shutil.chown = _blocked
    subprocess.Popen = subprocess.run = subprocess.call = subprocess.check_output = _blocked
    builtins.exit = builtins.quit = _blocked
    sys.modules["ctypes"] = None  # no foreign calls around the guard


class SandboxDenied(PermissionError):
    pass


class FrameDenied(SandboxDenied, ValueError):
    """ValueError too: the standard library's callers of sys._getframe (namedtuple, typing, enum)
    treat ValueError as 'no frame here' and go on."""


def _make_hook(key, nonce, proof_fd):
    _exit, _write, _id, _len, _type, _issubclass = posix._exit, posix.write, id, len, type, issubclass
    _str_str, _bytes_slice, _full = str.__str__, bytes.__getitem__, slice(None)
    stdout, stderr = sys.stdout, sys.stderr
    denied = frozenset({
        "sys._getframe", "sys._current_frames", "sys._current_exceptions", "sys.settrace", "sys.setprofile",
        "sys.addaudithook", "sys.monitoring.register_callback", "gc.get_objects", "gc.get_referrers",
        "gc.get_referents", "os.symlink", "os.link", "os.chdir",
    })
    frame_attributes = frozenset({"tb_frame", "gi_frame", "cr_frame", "ag_frame", "f_back"})
    bad_parts = frozenset({"proc", "dev", ".."})
    # Functions that exist now keep their code and defaults (copy.deepcopy, random.Random.randint, ...);
    # the completion's own functions may change (dataclasses set __defaults__ on the ones they make).
    existing = tuple(o for o in gc.get_objects() if _type(o) is types.FunctionType)
    existing_ids = frozenset(_id(f) for f in existing)

    def bad_path(path):
        t = _type(path)
        if t is int:
            return False
        if _issubclass(t, str):
            text = _str_str(path)
        elif _issubclass(t, bytes):
            text = _bytes_slice(path, _full).decode("utf-8", "surrogateescape")
        else:
            return True  # a path-like object may answer differently when open() asks again
        return not bad_parts.isdisjoint(text.split("/"))

    def hook(event, args):
        if _type(event) is not str:
            event = _str_str(event)
        if event == "selfprompt.proof":
            if _len(args) == 1 and args[0] is key:
                for stream in (stdout, stderr):
                    try:
                        stream.flush()
                    except BaseException:
                        pass
                _write(proof_fd, nonce)
                _exit(0)
            raise SandboxDenied("no proof without the harness's key")
        if event in denied:
            raise FrameDenied(f"{event} is blocked by the selfprompt sandbox")
        if event.startswith("ctypes."):
            raise SandboxDenied("ctypes is blocked by the selfprompt sandbox")
        if event == "object.__getattr__" and args[1] in frame_attributes:
            raise FrameDenied(f"{args[1]} is blocked by the selfprompt sandbox")
        if event in ("object.__setattr__", "object.__delattr__") and _id(args[0]) in existing_ids:
            raise SandboxDenied(f"changing {args[1]} of an existing function is blocked by the selfprompt sandbox")
        if event == "open" and bad_path(args[0]):
            raise SandboxDenied("this path is blocked by the selfprompt sandbox")

    hook.existing = existing  # keeps every listed function (and so its id) alive
    return hook


def _make_worker(key, solution, check, ns_test, entry_point):
    _exit, _exec, _audit, _exc_info = posix._exit, exec, sys.audit, sys.exc_info
    _excepthook, _BaseException, _builtins = sys.__excepthook__, BaseException, builtins
    plain, untouched = _make_plain(), _make_untouched()

    def unchanged_classes():
        changed = untouched()
        if changed is not None:
            raise RuntimeError(f"the program changed the existing class {changed!r}; tests refused to go on")

    def work(go):
        try:
            go.acquire()
            namespace = {"__name__": "solution", "__builtins__": _builtins}
            _exec(solution, namespace)
            if check is not None:
                candidate = namespace[entry_point]

                def guarded(*args, **kwargs):
                    unchanged_classes()  # e.g. random.Random patched to feed the tests easy inputs
                    return plain(candidate(*args, **kwargs), 0)

                ns_test[entry_point] = guarded  # a test that names the function gets the checked one
                check(guarded)
                unchanged_classes()
            _audit("selfprompt.proof", key)  # the hook writes the proof and ends the process
        except _BaseException:
            try:
                _excepthook(*_exc_info())
            except _BaseException:
                pass
        finally:
            _exit(1)

    return work


def _make_untouched():
    """A function that names a class existing now whose attributes have since changed, or returns None."""
    _len, _class_dict = len, type.__dict__["__dict__"].__get__  # not the metaclass's idea of __dict__
    flags, subclasses, missing = type.__dict__["__flags__"].__get__, type.__subclasses__, object()
    snapshot, seen, todo = [], set(), [object]
    while todo:
        cls = todo.pop()
        if id(cls) in seen:
            continue
        seen.add(id(cls))
        todo.extend(subclasses(cls))
        if not flags(cls) & (1 << 8):  # Py_TPFLAGS_IMMUTABLETYPE: built-in types cannot change anyway
            snapshot.append((cls, dict(_class_dict(cls))))

    def untouched():
        for cls, before in snapshot:
            now = _class_dict(cls)
            for name, value in before.items():
                if now.get(name, missing) is not value:
                    return cls
            if _len(now) != _len(before):
                for name in now:
                    # reading a class's __annotations__ creates an empty one: not a change
                    if name not in before and name != "__annotations__":
                        return cls
        return None

    return untouched


def _make_plain():
    """A function that rebuilds a returned value from exact built-in types, or raises TypeError."""
    _type, _issubclass, _TypeError = type, issubclass, TypeError
    _list, _tuple, _dict, _set, _frozenset, _complex = list, tuple, dict, set, frozenset, complex
    scalars = (type(None), bool, int, float, str, bytes, complex)
    _int, _float, _str = int.__int__, float.__float__, str.__str__
    _bytes_slice, _full = bytes.__getitem__, slice(None)
    _real, _imag = complex.__dict__["real"].__get__, complex.__dict__["imag"].__get__
    _list_iter, _tuple_iter = list.__iter__, tuple.__iter__
    _set_iter, _frozenset_iter = set.__iter__, frozenset.__iter__
    _dict_items = dict.items

    def plain(value, depth):
        t = _type(value)
        for s in scalars:
            if t is s:
                return value
        if depth > 100:
            raise _TypeError("the function returned a value nested more than 100 deep")
        if _issubclass(t, int):
            return _int(value)
        if _issubclass(t, float):
            return _float(value)
        if _issubclass(t, str):
            return _str(value)
        if _issubclass(t, bytes):
            return _bytes_slice(value, _full)
        if _issubclass(t, complex):
            return _complex(_real(value), _imag(value))
        if _issubclass(t, list):
            return [plain(v, depth + 1) for v in _list_iter(value)]
        if _issubclass(t, tuple):
            return _tuple([plain(v, depth + 1) for v in _tuple_iter(value)])
        if _issubclass(t, dict):
            return _dict([(plain(k, depth + 1), plain(v, depth + 1)) for k, v in _dict_items(value)])
        if _issubclass(t, set):
            return _set([plain(v, depth + 1) for v in _set_iter(value)])
        if _issubclass(t, frozenset):
            return _frozenset([plain(v, depth + 1) for v in _frozenset_iter(value)])
        raise _TypeError("the function returned an object that is not a built-in value "
                         "(None, bool, int, float, complex, str, bytes, list, tuple, dict, set, frozenset)")

    return plain


_main(int(sys.argv[1]), int(sys.argv[2]), job)
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
    """Run `program` in the sandbox; 'passed' means it ran to its last line (no exception, no early exit)
    within the limits. Never raises for anything the program does."""
    return _run_job({"solution": program}, limits)


def humaneval_solution(prompt: str, completion: str) -> str:
    """Prompt + completion: the module that defines the function. A completion that redefines the whole
    function simply overrides the prompt's stub (a def whose body is only its docstring is valid Python)."""
    return f"{prompt}\n{completion}\n"


def check_humaneval(extra: dict, completion: str, limits: SandboxLimits = SandboxLimits()) -> SandboxResult:
    """Run a HumanEval problem's tests (`extra`: prompt, test, entry_point) on a completion.

    'passed' means `check(candidate)` returned: every assert ran. The tests are defined from the prompt
    and `test` before the completion's code runs, so the completion cannot replace them."""
    job = {
        "solution": humaneval_solution(extra["prompt"], completion),
        "prompt": extra["prompt"],
        "test": extra["test"],
        "entry_point": extra["entry_point"],
    }
    return _run_job(job, limits)


def _run_job(job: dict, limits: SandboxLimits) -> SandboxResult:
    prefix = unshare_prefix()
    drop_to = NOBODY if os.getuid() == 0 and "--map-root-user" not in prefix else None
    workdir = Path(tempfile.mkdtemp(prefix="selfprompt-sandbox-"))
    try:
        job = {
            **job,
            "preload": list(PRELOAD),
            "limits": {
                "memory_bytes": limits.memory_bytes,
                "cpu_seconds": limits.cpu_seconds,
                "max_file_bytes": limits.max_file_bytes,
                "max_processes": limits.max_processes,
                "drop_to": drop_to,
            },
        }
        (workdir / "job.json").write_text(json.dumps(job), encoding="utf-8")
        (workdir / "runner.py").write_text(RUNNER, encoding="utf-8")
        if drop_to is not None:  # the sandbox user owns its temp dir and nothing else
            for p in (workdir, *workdir.iterdir()):
                os.chown(p, NOBODY, NOBODY)
        return _execute(prefix, workdir, limits)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _execute(prefix: tuple[str, ...], workdir: Path, limits: SandboxLimits) -> SandboxResult:
    # Output and proof live outside the dir the program can write to.
    output = workdir.parent / (workdir.name + ".out")
    proof = workdir.parent / (workdir.name + ".proof")
    nonce = secrets.token_hex(NONCE_BYTES).encode()
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"}
    started = time.perf_counter()
    nonce_read, nonce_write = os.pipe()
    try:
        os.write(nonce_write, nonce)  # 32 bytes: far below a pipe's buffer
    finally:
        os.close(nonce_write)
    proof_fd = os.open(proof, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        cmd = [*prefix, sys.executable, "-I", "runner.py", str(nonce_read), str(proof_fd)]
        with output.open("wb") as out:
            proc = subprocess.Popen(
                cmd,
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                pass_fds=(nonce_read, proof_fd),
            )
            os.close(nonce_read)
            os.close(proof_fd)
            nonce_read = proof_fd = -1
            try:
                returncode: int | None = proc.wait(timeout=limits.timeout_s)
            except subprocess.TimeoutExpired:
                returncode = None
            finally:
                _kill_group(proc.pid)  # anything it left behind in its group goes too
                proc.wait()
        tail = _tail(output, limits.max_output_chars)
        if returncode is None:
            status = "timeout"
        elif returncode == 0 and _read_proof(proof) == nonce:
            status = "passed"
        else:
            status = "failed"
            if returncode == 0:
                tail = (
                    tail + "\n[selfprompt sandbox: exit status 0 without the proof that the program or its "
                    "tests ran to the end: it stopped early]"
                )[-limits.max_output_chars :]
        return SandboxResult(
            status=status,
            returncode=returncode,
            output=tail,
            seconds=time.perf_counter() - started,
            isolation=_isolation(prefix),
        )
    finally:
        for fd in (nonce_read, proof_fd):
            if fd >= 0:
                os.close(fd)
        output.unlink(missing_ok=True)
        proof.unlink(missing_ok=True)


def _read_proof(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            return f.read(4 * NONCE_BYTES)  # anything longer than the nonce is not the nonce
    except OSError:
        return b""
