"""`python -m selfprompt.train` / `accelerate launch -m selfprompt.train`: the same as `selfprompt train`."""

import os
import signal
import sys
from pathlib import Path

PARENT = os.getppid()  # first: the launcher that started this process, before it can die under us

from selfprompt.train.cli import main  # noqa: E402

RUNNER_PID_ENV = "SELFPROMPT_RUNNER_PID"  # set by `selfprompt run` for the stages it launches


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")  # a zombie is dead, only not yet reaped


if __name__ == "__main__":
    if "LOCAL_RANK" in os.environ and sys.platform.startswith("linux"):
        # Started by a launcher (torchrun, accelerate, deepspeed): die with it. When `selfprompt run` is killed,
        # its launcher gets SIGKILL and cannot stop its workers; without this they would train on, orphaned.
        import ctypes

        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass
        # The launcher or the runner may have died while this process started, before the signal was asked for.
        runner = os.environ.get(RUNNER_PID_ENV, "")
        if os.getppid() != PARENT or (runner.isdigit() and not _alive(int(runner))):
            sys.exit(1)
    main()
