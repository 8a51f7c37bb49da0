"""`python -m selfprompt.train` / `accelerate launch -m selfprompt.train`: the same as `selfprompt train`."""

import os
import signal
import sys

from selfprompt.train.cli import main

if __name__ == "__main__":
    if "LOCAL_RANK" in os.environ and sys.platform.startswith("linux"):
        # Started by a launcher (torchrun, accelerate, deepspeed): die with it. When `selfprompt run` is killed,
        # its launcher gets SIGKILL and cannot stop its workers; without this they would train on, orphaned.
        import ctypes

        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass
    main()
