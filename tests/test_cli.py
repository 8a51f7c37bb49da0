"""Command-line manners: short usage errors with exit 2, --version, Ctrl-C exits 130 with a resume hint."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

SELFPROMPT = str(Path(sys.executable).parent / "selfprompt")


def maps_weights(pid: int) -> bool:
    """True once process `pid` has a model weights file mapped (transformers maps safetensors)."""
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False
    return ".safetensors" in maps or ".gguf" in maps


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([SELFPROMPT, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "args, says",
    [
        (["ask", "--conditon", "plain", "q"], "No such option: --conditon"),
        (["eval", "--limit", "many"], "Invalid value for '--limit'"),
        (["train"], "Missing option '--config'"),
        (["no-such-command"], "No such command"),
    ],
)
def test_usage_errors_exit_2_with_a_short_usage_line(args, says):
    proc = run(*args)
    assert proc.returncode == 2, proc.stderr
    assert says in proc.stderr and "Usage: selfprompt" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) <= 6, proc.stderr


@pytest.mark.parametrize(
    "args, says",
    [
        (["eval", "--limit", "-3", "--tasks", "gsm8k", "--out", "{tmp}/x"], "invalid value for 'limit'"),
        (["eval", "--temperature", "-1", "--tasks", "gsm8k", "--out", "{tmp}/x"], "temperature"),
        (["eval", "score", "--predictions", "{tmp}"], "Is a directory"),
    ],
)
def test_bad_values_and_unreadable_paths_are_one_line_errors_not_bugs(args, says, tmp_path):
    proc = run(*[a.format(tmp=tmp_path) for a in args])
    assert proc.returncode == 2, proc.stderr
    assert says in proc.stderr and "Traceback" not in proc.stderr and "bug" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) <= 3, proc.stderr


def test_version_and_bare_command():
    from selfprompt import __version__

    proc = run("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"selfprompt {__version__}"
    bare = run()
    assert "Usage: selfprompt" in bare.stdout + bare.stderr and "Traceback" not in bare.stderr


def test_train_entry_point_has_the_same_manners():
    proc = subprocess.run(
        [sys.executable, "-m", "selfprompt.train", "--confg", "x.yaml"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2 and "No such option: --confg" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_ctrl_c_exits_130_and_says_how_to_resume():
    proc = subprocess.Popen(
        [
            SELFPROMPT,
            "ask",
            "--condition",
            "plain",
            "--max-tokens",
            "400",
            "Write a long essay about the history of tea.",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A runner started in the background ignores SIGINT, and children inherit that
        # (Python then installs no KeyboardInterrupt handler): give the command a terminal's default.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    err: list[str] = []
    reader = threading.Thread(target=lambda: err.extend(iter(lambda: proc.stderr.read(1), "")), daemon=True)
    reader.start()
    # Interrupt once the command runs (the model's weights are mapped: loading or generating), not while Python
    # imports: on a loaded machine the imports alone can take longer than any fixed sleep. (Its loading bar
    # is no sign: bars are off when stderr is not a terminal.)
    deadline = time.monotonic() + 300
    while not maps_weights(proc.pid) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=120)
    reader.join(timeout=10)
    text = "".join(err)
    assert proc.returncode == 130, text[-2000:]
    assert "interrupted" in text and "again to resume" in text and "Traceback" not in text
