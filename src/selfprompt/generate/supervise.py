"""The watchdog between a stage and the inference server it starts (see selfprompt.generate.servers).

    python -m selfprompt.generate.supervise PARENT_PID GRACE_S -- COMMAND...

Runs COMMAND in its own process group and takes the whole group down (SIGTERM, then SIGKILL after GRACE_S
seconds, or ORPHAN_GRACE_S when PARENT_PID is gone) when it is told to stop (SIGTERM, SIGINT, SIGHUP), when
PARENT_PID dies, or when the server exits on its own. A stage killed with SIGKILL runs no cleanup of its own, and a server such as vLLM spawns workers that
outlive their parent; this process is what still stands then: the kernel sends it SIGTERM when the stage dies
(PR_SET_PDEATHSIG), and it is the subreaper of the server's descendants (PR_SET_CHILD_SUBREAPER), so even a
worker that left the group is found and killed. The server itself gets SIGKILL if this process dies first.

Only the standard library is imported: it starts in a fraction of a second and loads nothing of the model's.
Its first output line names the server's pid and process group (the server log is its stdout).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
ORPHAN_GRACE_S = 3.0  # SIGTERM -> SIGKILL when the stage died (a server finishes in-flight requests first)


def _prctl(option: int, value: int) -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(option, value)
    except OSError:  # not Linux: stopping on request still works, dying with the parent does not
        pass


def _server_dies_with_us() -> None:
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (orphans adopted by this subreaper included)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (name) ": state, ppid, ...
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(entry))
    return found


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop_group(proc: subprocess.Popen, grace: float) -> int:
    """SIGTERM to the server's group, SIGKILL after `grace` seconds, then SIGKILL to any adopted descendant."""
    pgid = proc.pid  # the server leads its own session, so its pid is its group id
    _signal_group(pgid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    _signal_group(pgid, signal.SIGKILL)  # workers that outlived a clean exit of the leader too
    code = proc.wait()
    me = os.getpid()
    for _ in range(50):  # descendants that left the group were adopted by us: kill and reap them
        orphans = _children(me)
        if not orphans:
            break
        for pid in orphans:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in orphans:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        time.sleep(0.05)
    return code


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        print("usage: python -m selfprompt.generate.supervise PARENT_PID GRACE_S -- COMMAND...", file=sys.stderr)
        return 2
    parent, grace, command = int(argv[0]), float(argv[1]), argv[3:]
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    if os.getppid() != parent:  # the stage died before the line above took effect
        return 1
    stopping: list[int] = []

    def request_stop(signum: int, _frame: object) -> None:
        stopping.append(signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, request_stop)
    try:
        proc = subprocess.Popen(command, start_new_session=True, preexec_fn=_server_dies_with_us)
    except OSError as e:
        print(f"[selfprompt] cannot start {command[0]!r}: {e}", flush=True)
        return 127
    print(f"[selfprompt] server pid {proc.pid} (process group {proc.pid})", flush=True)
    while proc.poll() is None and not stopping and os.getppid() == parent:
        time.sleep(0.1)
    exited = proc.returncode
    if os.getppid() != parent:  # the stage is gone: nobody waits for in-flight replies, so stop quickly
        grace = min(grace, ORPHAN_GRACE_S)
    code = stop_group(proc, 0.0 if exited is not None else grace)
    if exited is not None:
        print(f"[selfprompt] server exited by itself with code {exited}", flush=True)
    return code if exited is not None else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
