"""HumanEval execution sandbox: real solutions pass, hostile completions fail alone and leave no trace."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from selfprompt.evaluate.extract import ExtractInput, extract
from selfprompt.evaluate.sandbox import SandboxLimits, check_humaneval, run_python
from selfprompt.evaluate.tasks import get_tasks, load_items

LIMITS = SandboxLimits(timeout_s=4, cpu_seconds=3)


@pytest.fixture(scope="module")
def problems(data_dir):
    return {i.id: i for i in load_items(get_tasks(["humaneval"])[0], data_dir)}


def sandbox_processes() -> set[int]:
    """Pids of anything still running our sandbox runner."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if b"runner.py" in (entry / "cmdline").read_bytes():
                    pids.add(int(entry.name))
            except OSError:
                pass
    return pids


def test_canonical_solutions_pass_and_wrong_ones_fail(problems):
    for task_id in ("HumanEval/0", "HumanEval/2", "HumanEval/10", "HumanEval/162"):  # 10: helper fn; 162: hashlib
        assert check_humaneval(problems[task_id].extra, problems[task_id].answer, LIMITS).passed, task_id
    assert check_humaneval(problems["HumanEval/2"].extra, "    return number", LIMITS).status == "failed"
    assert check_humaneval(problems["HumanEval/2"].extra, "", LIMITS).status == "failed"  # docstring stub only


def test_full_function_in_a_code_block_passes(problems):
    p = problems["HumanEval/2"]  # truncate_number
    answer = "Sure!\n```python\ndef truncate_number(number: float) -> float:\n    return number % 1.0\n```"
    code = extract(["code-block", "code-raw"], ExtractInput(answer=answer, entry_point=p.extra["entry_point"])).lenient
    assert check_humaneval(p.extra, code, LIMITS).passed


@pytest.mark.parametrize(
    "name, body",
    [
        ("infinite-loop", "    while True:\n        pass\n"),
        ("fork-bomb", "    import posix\n    while True:\n        posix.fork()\n"),
        (
            "fork-and-hide",
            "    import posix, time\n    if posix.fork() == 0:\n        time.sleep(60)\n    return number % 1.0\n",
        ),
        ("huge-output", "    while True:\n        print('x' * 1_000_000)\n"),
        ("memory-hog", "    blocks = []\n    while True:\n        blocks.append(bytearray(100 << 20))\n"),
        (
            "network",
            "    import socket\n    socket.create_connection(('127.0.0.1', 22), timeout=1)\n    return number % 1.0\n",
        ),
    ],
)
def test_hostile_completion_fails_and_leaves_nothing(problems, name, body):
    before, dirs_before = sandbox_processes(), sandbox_dirs()
    result = check_humaneval(problems["HumanEval/2"].extra, body, LIMITS)
    assert result.status in ("failed", "timeout"), (name, result)
    assert sandbox_processes() - before == set()
    assert sandbox_dirs() - dirs_before == set(), "temp dirs must be removed"


def sandbox_dirs() -> set[Path]:
    # Compared before and after: a machine's temp folder may hold others' (a killed run's) from before.
    return set(Path(tempfile.gettempdir()).glob("selfprompt-sandbox-*"))


def test_file_deletion_cannot_touch_files_outside(tmp_path, problems):
    sentinel = tmp_path / "sentinel.txt"
    sentinel.write_text("keep me")
    os.chmod(tmp_path, 0o755)  # even a readable folder: the sandbox must still not delete in it
    body = (
        f"    import os, shutil, importlib\n"
        f"    for f in (lambda: os.remove({str(sentinel)!r}), lambda: shutil.rmtree({str(tmp_path)!r}),\n"
        f"              lambda: open({str(sentinel)!r}, 'w').write('gone')):\n"
        f"        try:\n            f()\n        except Exception:\n            pass\n"
        f"    return number % 1.0\n"
    )
    result = check_humaneval(problems["HumanEval/2"].extra, body, LIMITS)
    assert sentinel.read_text() == "keep me"
    assert result.status in ("passed", "failed")  # whatever it returns, the file survived


def test_a_good_problem_still_passes_after_hostile_ones(problems):
    """The sandbox holds no state: a hostile run does not break the next one."""
    run_python("import posix\nwhile True: posix.fork()", LIMITS)
    assert run_python("assert sum(range(10)) == 45", LIMITS).passed


# --- passing is proof that the tests ran to their end ---------------------------------------------------


def naive_exit_status(problem, completion: str, tmp_path: Path) -> int:
    """Exit status of the program an exit-status scorer runs (prompt, completion, tests, check()), unsandboxed.
    Only for the harmless attacks below: it shows each one fools such a scorer."""
    p = problem.extra
    program = f"{p['prompt']}\n{completion}\n\n{p['test']}\n\ncheck({p['entry_point']})\n"
    (tmp_path / "program.py").write_text(program, encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-I", "program.py"], cwd=tmp_path, capture_output=True, timeout=30
    ).returncode


TRACER = """
    return False


import sys


def _skip_to_last_line(frame, event, arg):
    if event == "call" and frame.f_code.co_name == "check":
        last = max(line for _, _, line in frame.f_code.co_lines() if line)

        def jump(frame, event, arg):
            if event == "line" and frame.f_lineno < last:
                frame.f_lineno = last
            return jump
        return jump
    return None


sys.settrace(_skip_to_last_line)
"""

# (name, problem, completion, fools an exit-status scorer): every one is a wrong solution.
EARLY_EXITS = [
    ("sys.exit(0)", "HumanEval/0", "    import sys; sys.exit(0)", True),
    ("sys.exit at module level", "HumanEval/0", "    return True\n\n\nimport sys\nsys.exit(0)\n", True),
    ("raise SystemExit", "HumanEval/0", "    raise SystemExit", True),
    ("exit()", "HumanEval/0", "    exit()", True),
    ("quit(0)", "HumanEval/0", "    quit(0)", True),
    ("os._exit(0)", "HumanEval/0", "    import os; os._exit(0)", True),
    ("posix._exit(0)", "HumanEval/0", "    import posix; posix._exit(0)", True),
    (
        "signal handler exits 0",
        "HumanEval/0",
        "    import os, signal\n    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))\n"
        "    signal.raise_signal(signal.SIGTERM)\n",
        True,
    ),
    ("kill itself", "HumanEval/0", "    import os, signal; os.kill(os.getpid(), signal.SIGKILL)", False),
    ("KeyboardInterrupt", "HumanEval/0", "    raise KeyboardInterrupt", False),
    (
        "BaseException subclass, then atexit",
        "HumanEval/0",
        "    import atexit, os\n    atexit.register(os._exit, 0)\n    class Stop(BaseException):\n        pass\n"
        "    raise Stop()",
        True,
    ),
    (
        "atexit turns a failed assert into 0",
        "HumanEval/0",
        "    import atexit, os\n    atexit.register(os._exit, 0)\n    return True",
        True,
    ),
    (
        "thread exits 0 after the failure",
        "HumanEval/0",
        "    import os, threading, time\n    threading.Thread(target=lambda: (time.sleep(0.5), os._exit(0))).start()\n"
        "    return True",
        True,
    ),
    (
        "close stdout and stderr, exit 0",
        "HumanEval/0",
        "    import os\n    os.close(1); os.close(2)\n    os._exit(0)",
        True,
    ),
    (
        "write a fake proof everywhere",
        "HumanEval/0",
        "    import os\n    for fd in range(64):\n        try:\n            os.write(fd, b'0' * 32)\n"
        "        except OSError:\n            pass\n    os._exit(0)",
        True,
    ),
]
DISARMS = [
    (
        "always-equal object",
        "HumanEval/0",
        "    class Yes:\n        def __eq__(self, other):\n            return True\n    return Yes()",
        True,
    ),
    (
        "int subclass equal to everything",
        "HumanEval/0",
        "    class Yes(int):\n        def __eq__(self, other):\n            return True\n    return Yes(1)",
        True,
    ),
    (
        "builtins.abs patched",
        "HumanEval/2",
        "    import builtins\n    builtins.abs = lambda x: 0\n    return 0.5",
        True,
    ),
    ("math.fabs patched", "HumanEval/32", "    import math\n    math.fabs = lambda x: 0.0\n    return 0.0", True),
    (
        "sys.modules['math'] replaced",
        "HumanEval/32",
        "    return 0.0\n\n\nimport copy, random, sys, types\nfake = types.ModuleType('math')\nfake.fabs = lambda x: 0.0\n"
        "sys.modules['math'] = fake\n",
        True,
    ),
    ("the test's helper redefined", "HumanEval/32", "    return 0.0\n\n\ndef poly(xs, x):\n    return 0.0\n", True),
    (
        "the test's helper rebound through a frame",
        "HumanEval/32",
        "    import sys\n    frame = sys._getframe(1)\n    while 'poly' not in frame.f_globals:\n"
        "        frame = frame.f_back\n    frame.f_globals['poly'] = lambda xs, x: 0.0\n    return 0.0",
        True,
    ),
    (
        "random.Random patched to feed easy inputs",
        "HumanEval/32",
        "    return -1.0\n\n\nimport random\nrandom.Random.randint = lambda self, a, b: 1\n",
        True,
    ),
    ("sys.settrace jumps over the asserts", "HumanEval/0", TRACER, True),
    # HumanEval/38 and /50 draw their inputs with random.randint / random.choice: rigging the shared
    # instance behind those functions makes every input the same easy string.
    (
        "random._inst._randbelow patched",
        "HumanEval/38",
        "    return s\n\nimport random\nrandom._inst._randbelow = lambda n: 0\n",
        True,
    ),
    (
        "random._inst.getrandbits patched",
        "HumanEval/38",
        "    return s\n\nimport random\nrandom._inst.getrandbits = lambda k: 0\n",
        True,
    ),
    (
        "random._inst.__class__ swapped",
        "HumanEval/38",
        "    return s\n\nimport random\nclass R(random.Random):\n    def _randbelow(self, n):\n        return 0\n"
        "random._inst.__class__ = R\n",
        True,
    ),
    (
        "random._inst rigged for encode_shift",
        "HumanEval/50",
        "    return 'a' * len(s)\n\nimport random\nrandom._inst._randbelow = lambda n: 0\n",
        True,
    ),
]


@pytest.mark.parametrize(
    "name, task_id, completion, fools_exit_status",
    EARLY_EXITS + DISARMS,
    ids=[case[0] for case in EARLY_EXITS + DISARMS],
)
def test_a_program_that_stops_early_or_disarms_the_tests_fails(
    problems, tmp_path, name, task_id, completion, fools_exit_status
):
    problem = problems[task_id]
    if fools_exit_status:  # the attack is real: scored by exit status, this wrong solution passes
        assert naive_exit_status(problem, completion, tmp_path) == 0, name
    result = check_humaneval(problem.extra, completion, LIMITS)
    assert result.status == "failed", (name, result)


def test_issue_example_exit_zero_fails_and_the_canonical_solution_passes(problems):
    """HumanEval/0 with the body `import sys; sys.exit(0)` used to score passed (exit status 0)."""
    problem = problems["HumanEval/0"]
    result = check_humaneval(problem.extra, "    import sys; sys.exit(0)", LIMITS)
    assert (result.status, result.passed) == ("failed", False)
    assert check_humaneval(problem.extra, problem.answer, LIMITS).passed


THIEF = """
    import gc, os, re, signal, sys
    found = set()
    def look(obj):
        if isinstance(obj, str):
            obj = obj.encode()
        if isinstance(obj, bytes) and re.fullmatch(rb"[0-9a-f]{32}", obj):
            found.add(obj)
    def walk(frame):
        while frame is not None:
            for value in list(frame.f_locals.values()) + list(frame.f_globals.values()):
                look(value)
            frame = frame.f_back
    attempts = [
        lambda: [look(o) for o in gc.get_objects()],
        lambda: walk(sys._getframe()),
        lambda: [walk(f) for f in sys._current_frames().values()],
        lambda: signal.signal(signal.SIGUSR1, lambda s, frame: walk(frame)) or signal.raise_signal(signal.SIGUSR1),
        lambda: open("/proc/self/mem", "rb").read(1),
        lambda: open("/dev/fd/../mem", "rb").read(1),
        lambda: os.open("proc/self/mem", os.O_RDONLY, dir_fd=os.open("/", os.O_RDONLY)),
    ]
    def from_traceback():
        try:
            raise ValueError
        except ValueError as e:
            walk(e.__traceback__.tb_frame)
    def from_generator():
        def gen():
            yield
        g = gen()
        walk(g.gi_frame)
    attempts += [from_traceback, from_generator]
    blocked = 0
    for attempt in attempts:
        try:
            attempt()
        except Exception:
            blocked += 1
    print("blocked", blocked, "of", len(attempts), "found", len(found), flush=True)
    for fd in range(3, 64):
        for nonce in found:
            try:
                os.write(fd, nonce)
            except OSError:
                pass
    os._exit(0)
"""


def test_the_proof_cannot_be_stolen(problems):
    """A program that hunts for the nonce (object graph, frames of every kind, its own memory) finds nothing."""
    result = check_humaneval(problems["HumanEval/0"].extra, THIEF, LIMITS)
    assert result.status == "failed", result
    assert "blocked 9 of 9 found 0" in result.output, result.output


CORRECT_WITH_STDLIB = """
    import collections, functools, typing
    T = typing.TypeVar("T")
    Parts = collections.namedtuple("Parts", "whole fraction")

    class Splitter:
        pass
    Splitter.method = staticmethod(lambda x: Parts(int(x), x - int(x)))

    @functools.lru_cache(maxsize=None)
    def split(x: float) -> Parts:
        return Splitter.method(x)
    print("splitting", number)
    return split(number).fraction
"""

COUNTER_HISTOGRAM = """
    from collections import Counter
    counts = Counter(w for w in test.split(" ") if w)
    if not counts:
        return Counter()
    top = max(counts.values())
    return Counter({w: c for w, c in counts.items() if c == top})
"""


@pytest.mark.parametrize(
    "task_id, completion",
    [
        ("HumanEval/2", CORRECT_WITH_STDLIB),  # namedtuple, TypeVar, lru_cache, a class changed after creation
        ("HumanEval/111", COUNTER_HISTOGRAM),  # a dict subclass is compared as the dict it is
    ],
)
def test_correct_solutions_using_the_standard_library_still_pass(problems, task_id, completion):
    result = check_humaneval(problems[task_id].extra, completion, LIMITS)
    assert result.passed, result


def test_canonical_solutions_that_use_prompt_helpers_pass(problems):
    # 32: the test calls the prompt's poly; 33: it names the function; 38 and 50: it calls the prompt's encoders.
    for task_id in ("HumanEval/32", "HumanEval/33", "HumanEval/38", "HumanEval/50"):
        assert check_humaneval(problems[task_id].extra, problems[task_id].answer, LIMITS).passed, task_id


def test_run_python_passes_only_a_program_that_ran_to_its_end():
    assert run_python("x = sum(range(10))\nassert x == 45\n", LIMITS).passed
    for program in ("import sys\nsys.exit(0)\nassert False\n", "raise SystemExit\n", "exit()\n"):
        assert run_python(program, LIMITS).status == "failed", program
    result = run_python("import os\nos._exit(0)\n", LIMITS)
    assert (result.status, result.returncode) == ("failed", 0)
    assert "stopped early" in result.output
