"""HumanEval execution sandbox: real solutions pass, hostile completions fail alone and leave no trace."""

from __future__ import annotations

import os
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


@pytest.mark.parametrize("name, body", [
    ("infinite-loop", "    while True:\n        pass\n"),
    ("fork-bomb", "    import posix\n    while True:\n        posix.fork()\n"),
    ("fork-and-hide", "    import posix, time\n    if posix.fork() == 0:\n        time.sleep(60)\n    return number % 1.0\n"),
    ("huge-output", "    while True:\n        print('x' * 1_000_000)\n"),
    ("memory-hog", "    blocks = []\n    while True:\n        blocks.append(bytearray(100 << 20))\n"),
    ("network", "    import socket\n    socket.create_connection(('127.0.0.1', 22), timeout=1)\n    return number % 1.0\n"),
])
def test_hostile_completion_fails_and_leaves_nothing(problems, name, body):
    before = sandbox_processes()
    result = check_humaneval(problems["HumanEval/2"].extra, body, LIMITS)
    assert result.status in ("failed", "timeout"), (name, result)
    assert sandbox_processes() - before == set()
    assert not list(Path("/tmp").glob("selfprompt-sandbox-*")), "temp dirs must be removed"


def test_file_deletion_cannot_touch_files_outside(tmp_path, problems):
    sentinel = tmp_path / "sentinel.txt"
    sentinel.write_text("keep me")
    os.chmod(tmp_path, 0o755)  # even a readable folder: the sandbox must still not delete in it
    body = (f"    import os, shutil, importlib\n"
            f"    for f in (lambda: os.remove({str(sentinel)!r}), lambda: shutil.rmtree({str(tmp_path)!r}),\n"
            f"              lambda: open({str(sentinel)!r}, 'w').write('gone')):\n"
            f"        try:\n            f()\n        except Exception:\n            pass\n"
            f"    return number % 1.0\n")
    result = check_humaneval(problems["HumanEval/2"].extra, body, LIMITS)
    assert sentinel.read_text() == "keep me"
    assert result.status in ("passed", "failed")  # whatever it returns, the file survived


def test_a_good_problem_still_passes_after_hostile_ones(problems):
    """The sandbox holds no state: a hostile run does not break the next one."""
    run_python("import posix\nwhile True: posix.fork()", LIMITS)
    assert run_python("assert sum(range(10)) == 45", LIMITS).passed
