"""Progress you can see: one live line for every command that works for long, plain lines in logs.

    with ProgressLine("eval gsm8k/plain", total=len(items)) as line:
        line.advance(n_cached, cached=True)   # served from a cache or an earlier run: not work
        ...
        line.advance(len(batch))              # generated now

The line shows items done of total, the rate and the time left. The rate is measured over the
items worked in this run only (done minus cached, divided by the seconds since the line started):
items read back from a cache take no time, and counting them would promise a finish that never
comes. Where the rate is unknown yet (nothing worked), rate and time left show "--".

Output, by where stderr goes:

* a terminal: a live line (spinner, counts, rate, time left, elapsed), redrawn 4 times a second,
  replaced at the end by one summary line;
* anything else (a log file, a pipe): a plain line at the start, at every further 10% of the
  total, every 30 s otherwise, and at the end, so that logs show progress too.

Work inside a batch: a batch of items finishes all at once (eval's 8 generations take minutes on a
CPU), so a backend reports its decoding steps meanwhile with `report_step(done, total, items)` (the hf
backend: tokens generated of the batch's most; llama.cpp: replies of the batch). The innermost open line
shows them after its counts (``0/8 items  [batch of 8: 37/256 tokens]``) until the batch's items are
counted. They are not items: the rate and the time left still come from finished items only.

And, when the environment names a file descriptor in SELFPROMPT_PROGRESS_FD (`selfprompt run`
sets it for the stage it starts), one JSON line per change is written there:
``{"label": str, "unit": str, "done": int, "total": int | null, "cached": int, "detail": str,
"step": {"done": int, "total": int, "unit": str, "items": int} | null,
"state": "start" | "advance" | "step" | "end"}`` (step events at most every STEP_EVERY_S); the runner
draws its own line from them (see experiment/runner.py).
Processes started by a launcher (`accelerate launch`, torchrun) inherit no descriptors: for them the
runner names a named pipe in SELFPROMPT_PROGRESS_PATH instead. Of several processes (RANK set), only
rank 0 sends events, so a data-parallel stage reports one count, not one per process.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

PROGRESS_FD_ENV = "SELFPROMPT_PROGRESS_FD"
PROGRESS_PATH_ENV = "SELFPROMPT_PROGRESS_PATH"
PLAIN_EVERY_S = 30.0  # not a terminal: a line at least this often while work goes on
PLAIN_EVERY_FRACTION = 0.1  # ... and one at every further tenth of the total
STEP_EVERY_S = 0.5  # step events (work inside a batch) at most this often: a backend reports every decoding step


# ---------------------------------------------------------------------------------------------
# The arithmetic


class Tally:
    """Counts and the true rate of one piece of work. Times are seconds from `clock` (monotonic)."""

    def __init__(self, total: int | None, clock: Callable[[], float] = time.monotonic):
        self.total, self.clock = total, clock
        self.done = 0  # items finished, cached ones included
        self.cached = 0  # of which served without work (a cache, an earlier run)
        self.started = clock()
        self.stopped: float | None = None  # set when the work ended: the clock (and so the rate) stops there

    @property
    def worked(self) -> int:
        """Items finished by work in this run."""
        return self.done - self.cached

    def elapsed(self, now: float | None = None) -> float:
        end = self.stopped if self.stopped is not None else (self.clock() if now is None else now)
        return max(0.0, end - self.started)

    def stop_clock(self) -> None:
        """The work ended (all done, or the caller says so): what follows (saving, closing) is not its time."""
        if self.stopped is None:
            self.stopped = self.clock()

    def check_finished(self) -> None:
        """Stop the clock once every item is done; restart it if the total grew again."""
        if self.total is not None and self.done >= self.total > 0:
            self.stop_clock()
        else:
            self.stopped = None

    def rate(self, now: float | None = None) -> float | None:
        """Items worked per second since the start; None until one is worked (cached items are no work)."""
        seconds = self.elapsed(now)
        return self.worked / seconds if self.worked > 0 and seconds > 0 else None

    def seconds_left(self, now: float | None = None) -> float | None:
        """Items still to do over the rate; 0 when all are done; None when unknown (no total or no rate yet)."""
        if self.total is None:
            return None
        remaining = max(0, self.total - self.done)
        if remaining == 0:
            return 0.0
        rate = self.rate(now)
        return remaining / rate if rate else None


def format_duration(seconds: float | None) -> str:
    """'--', '42s', '3m05s', '1h02m'."""
    if seconds is None:
        return "--"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def format_rate(per_second: float | None, unit: str) -> str:
    """Per second, per minute or per hour, whichever gives a number of at least 1."""
    if not per_second:
        return f"-- {unit}/s"
    if per_second >= 1:
        return f"{per_second:.2f} {unit}/s"
    if per_second * 60 >= 1:
        return f"{per_second * 60:.2f} {unit}/min"
    return f"{per_second * 3600:.2f} {unit}/h"


def describe(label: str, tally: Tally, unit: str, now: float | None = None, step: dict[str, Any] | None = None) -> str:
    """One line: label, done/total, cached, the batch in progress (`step`, see report_step), rate, time left,
    elapsed."""
    if tally.total is None and tally.done == 0 and not step:
        return f"{label}  starting  elapsed {format_duration(tally.elapsed(now))}"
    counts = f"{tally.done}/{tally.total if tally.total is not None else '?'} {unit}"
    if tally.cached:
        counts += f" ({tally.cached} cached)"
    if step:
        counts += f"  [batch of {step['items']}: {step['done']}/{step['total']} {step['unit']}]"
    return (
        f"{label}  {counts}  {format_rate(tally.rate(now), unit)}  left {format_duration(tally.seconds_left(now))}"
        f"  elapsed {format_duration(tally.elapsed(now))}"
    )


# ---------------------------------------------------------------------------------------------
# Events for `selfprompt run`


class _EventPipe:
    """Writes progress events to the descriptor named in SELFPROMPT_PROGRESS_FD; silent when there is none."""

    def __init__(self) -> None:
        self.stream: Any = None
        self.opened = False
        self.lock = threading.Lock()

    def write(self, event: dict[str, Any]) -> None:
        with self.lock:
            if not self.opened:
                self.opened = True
                if os.environ.get("RANK", "0") != "0":
                    return  # the other processes of a launched job do the same work: rank 0 reports it
                fd = os.environ.get(PROGRESS_FD_ENV, "") or self._open_path(os.environ.get(PROGRESS_PATH_ENV, ""))
                try:
                    # Only a pipe: a process that inherited the variable but not the descriptor may hold
                    # another file under that number, which events must not be written into.
                    is_pipe = bool(fd) and stat.S_ISFIFO(os.fstat(int(fd)).st_mode)
                    self.stream = os.fdopen(int(fd), "w", buffering=1, encoding="utf-8") if is_pipe else None
                except (ValueError, OSError):
                    self.stream = None  # not ours, or closed: progress is a courtesy, never a failure
            if self.stream is None:
                return
            try:
                self.stream.write(json.dumps(event) + "\n")
            except (OSError, ValueError):
                self.stream = None  # the runner went away

    @staticmethod
    def _open_path(path: str) -> str:
        """The descriptor (as text) of the named pipe at `path`, opened for writing; "" when there is none or no
        reader (non-blocking open: a runner that went away must not hang the stage)."""
        if not path:
            return ""
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            return ""
        os.set_blocking(fd, True)
        return str(fd)


EVENTS = _EventPipe()


# The lines open in this process, innermost last: report_step goes to the last one.
_OPEN: list[ProgressLine] = []
_OPEN_LOCK = threading.Lock()


def report_step(done: int, total: int, items: int, unit: str = "tokens") -> None:
    """Work inside a batch of `items` items: `done` of `total` `unit` (e.g. tokens generated of the batch's
    most). For the innermost open progress line, if any; cheap to call at every decoding step (a lock and
    a clock read; events are throttled). Cleared when items are next counted."""
    with _OPEN_LOCK:
        line = _OPEN[-1] if _OPEN else None
    if line is not None:
        line.set_step(done, total, items, unit)


def read_events(stream: Any, on_event: Callable[[dict[str, Any]], None]) -> None:
    """Runner side: call `on_event` for every well-formed event line until the stream ends."""
    for line in stream:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict) and "label" in event:
            step = event.get("step")
            if step is not None and not (isinstance(step, dict) and {"done", "total", "unit", "items"} <= set(step)):
                event["step"] = None  # not ours: drawing it must not fail
            on_event(event)


# ---------------------------------------------------------------------------------------------
# The line


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class ProgressLine:
    """A live progress line (terminal) or occasional plain lines (log), plus events for the runner.

    Use as a context manager. `advance(n, cached=...)` counts items; `update(...)` sets absolute
    values (the runner, from a stage's events). `show=False` draws nothing but still sends events;
    `summary=False` leaves no closing line (the caller says how it ended).
    Thread-safe: advance and update may come from any thread.
    """

    def __init__(
        self,
        label: str,
        total: int | None,
        unit: str = "items",
        *,
        console: Console | None = None,
        show: bool = True,
        send_events: bool = True,
        summary: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.label, self.unit = label, unit
        self.detail = ""  # shown after the counts (e.g. annotate's status counts); not part of the label
        self.tally = Tally(total, clock)
        self.console = console or Console(stderr=True)
        self.show, self.send_events, self.summary, self.clock = show, send_events, summary, clock
        self.lock = threading.RLock()
        self.live: Live | None = None
        self.spinner = Spinner("dots")
        self.stop = threading.Event()
        self.ticker: threading.Thread | None = None
        self.last_plain_at = 0.0
        self.last_plain_done = 0
        self.step: dict[str, Any] | None = None  # the batch in progress (report_step); None between batches
        self.last_step_event_at = float("-inf")

    # -- context ----------------------------------------------------------------------------------
    def __enter__(self) -> ProgressLine:
        with _OPEN_LOCK:
            _OPEN.append(self)
        self._event("start")
        if not self.show:
            return self
        if self.console.is_terminal and not self.console.is_dumb_terminal:
            # Prints to stdout go above the line only when stdout is this terminal too: redirected output
            # (`ask --json ... > file`) must stay where the user sent it.
            self.live = Live(
                self,
                console=self.console,
                transient=True,
                refresh_per_second=4,
                redirect_stdout=_is_terminal(sys.stdout),
            )
            self.live.start()
        else:
            self._plain()
            self.ticker = threading.Thread(target=self._tick, daemon=True)
            self.ticker.start()
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        with _OPEN_LOCK:
            if self in _OPEN:
                _OPEN.remove(self)
        with self.lock:
            self.tally.stop_clock()
            self.step = None
        self.stop.set()
        if self.ticker is not None:
            self.ticker.join()
        if self.live is not None:
            self.live.stop()
        self._event("end")
        plain_says_it = self.ticker is not None and self.last_plain_done == self.tally.done and exc_type is None
        if self.show and self.summary and not plain_says_it:
            with self.lock:
                status = "" if exc_type is None else "  (stopped)"
                self.console.print(self.text() + status, markup=False, highlight=False, soft_wrap=True)

    # -- counting ---------------------------------------------------------------------------------
    def advance(self, n: int = 1, *, cached: bool = False) -> None:
        """`n` more items finished; `cached` when they took no work (cache hits, resumed rows)."""
        if n <= 0:
            return
        with self.lock:
            self.tally.done += n
            if cached:
                self.tally.cached += n
            self.step = None  # the batch's items are counted now
            self._after_change()

    def add_total(self, n: int) -> None:
        """More items than announced (a retry round)."""
        with self.lock:
            self.tally.total = (self.tally.total or 0) + n
            self._after_change()

    def set_detail(self, detail: str) -> None:
        with self.lock:
            self.detail = detail

    def set_step(self, done: int, total: int, items: int, unit: str = "tokens") -> None:
        """Work inside the batch in progress (see report_step); shown at once, sent as an event at most every
        STEP_EVERY_S (and at the batch's last step)."""
        with self.lock:
            self.step = {"done": done, "total": total, "unit": unit, "items": items}
            now = self.clock()
            if now - self.last_step_event_at >= STEP_EVERY_S or done >= total:
                self.last_step_event_at = now
                self._event("step")

    def update(
        self,
        *,
        done: int,
        cached: int,
        total: int | None,
        label: str | None = None,
        unit: str | None = None,
        detail: str = "",
        step: dict[str, Any] | None = None,
        ended: bool = False,
    ) -> None:
        """Set absolute values. A new label starts a new tally (another piece of work, with its own rate);
        `step` is the batch in progress (see report_step); `ended` stops its clock."""
        with self.lock:
            if label is not None and label != self.label:
                self.label, self.tally = label, Tally(total, self.clock)
                self.last_plain_done, self.last_plain_at = 0, 0.0
            self.unit, self.detail, self.step = unit or self.unit, detail, step
            self.tally.total, self.tally.done, self.tally.cached = total, done, cached
            self._after_change()
            if ended:
                self.tally.stop_clock()

    def text(self) -> str:
        with self.lock:
            line = describe(self.label, self.tally, self.unit, step=self.step)
            return f"{line}  {self.detail}" if self.detail else line

    # -- drawing ----------------------------------------------------------------------------------
    def __rich_console__(self, console: Console, options: Any):  # the live renderable
        grid = Table.grid(padding=(0, 1))
        grid.add_row(self.spinner, Text(self.text(), no_wrap=True, overflow="ellipsis"))
        yield grid

    def _after_change(self) -> None:
        self.tally.check_finished()
        self._event("advance")
        if self.show and self.live is None and self.ticker is not None:
            total = self.tally.total or 0
            if total and self.tally.done - self.last_plain_done >= max(1, PLAIN_EVERY_FRACTION * total):
                self._plain()

    def _plain(self) -> None:
        with self.lock:
            self.last_plain_at, self.last_plain_done = self.clock(), self.tally.done
            self.console.print(self.text(), markup=False, highlight=False, soft_wrap=True)

    def _tick(self) -> None:
        while not self.stop.wait(1.0):
            if self.clock() - self.last_plain_at >= PLAIN_EVERY_S:
                self._plain()

    def _event(self, state: str) -> None:
        if self.send_events:
            t = self.tally
            EVENTS.write(
                {
                    "label": self.label,
                    "unit": self.unit,
                    "done": t.done,
                    "total": t.total,
                    "cached": t.cached,
                    "detail": self.detail,
                    "step": self.step,
                    "state": state,
                }
            )


class PhasedProgress:
    """One ProgressLine per phase (e.g. eval's task/condition pairs), opened on a phase's first call.

    Call it as `progress(phase, n, total, cached=False)`; a new phase closes the previous line.
    """

    def __init__(self, prefix: str, unit: str = "items", *, console: Console | None = None, show: bool = True):
        self.prefix, self.unit, self.console, self.show = prefix, unit, console, show
        self.phase: str | None = None
        self.line: ProgressLine | None = None

    def __call__(self, phase: str, n: int, total: int, cached: bool = False) -> None:
        if phase != self.phase:
            self._close(None)
            self.phase = phase
            self.line = ProgressLine(
                f"{self.prefix} {phase}", total, self.unit, console=self.console, show=self.show
            ).__enter__()
        assert self.line is not None
        self.line.advance(n, cached=cached)

    def _close(self, exc_type: Any) -> None:
        if self.line is not None:
            self.line.__exit__(exc_type, None, None)
            self.line = None

    def __enter__(self) -> PhasedProgress:
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        self._close(exc_type)
