"""Progress you can see: the rate counts only work done in this run, logs get plain lines, and
`selfprompt run` receives a stage's progress events and ends with a table of every stage."""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

import pytest
from rich.console import Console

from selfprompt import progress as P
from selfprompt.errors import SelfPromptError
from selfprompt.experiment.runner import DONE_FILE, assign_keys, plan, run_experiment
from selfprompt.experiment.spec import Experiment


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# --- the arithmetic -------------------------------------------------------------------------------


def test_rate_and_time_left_count_only_items_worked_in_this_run():
    clock = Clock()
    tally = P.Tally(100, clock)
    tally.done = tally.cached = 90  # resumed: 90 rows already there, served in no time
    clock.now = 10.0
    tally.done += 5  # 5 rows worked in 10 s
    assert tally.worked == 5
    assert tally.rate() == pytest.approx(0.5)  # not 95 / 10
    assert tally.seconds_left() == pytest.approx(5 / 0.5)
    clock.now = 20.0  # nothing more finished: the rate falls, the time left grows
    assert tally.rate() == pytest.approx(0.25) and tally.seconds_left() == pytest.approx(20.0)


def test_no_rate_and_no_time_left_before_any_work():
    clock = Clock()
    tally = P.Tally(8, clock)
    tally.done = tally.cached = 3
    clock.now = 60.0
    assert tally.rate() is None and tally.seconds_left() is None
    text = P.describe("eval gsm8k/plain", tally, "items")
    assert "3/8 items (3 cached)" in text and "-- items/s" in text and "left --" in text and "elapsed 1m00s" in text
    tally.done = 8
    tally.cached = 3
    assert tally.seconds_left() == 0.0


def test_unknown_total_says_starting_until_something_is_done():
    clock = Clock()
    tally = P.Tally(None, clock)
    clock.now = 75.0
    assert P.describe("train-baseline", tally, "items") == "train-baseline  starting  elapsed 1m15s"


@pytest.mark.parametrize("seconds,text", [(None, "--"), (0.4, "0s"), (42, "42s"), (185, "3m05s"), (3725, "1h02m")])
def test_format_duration(seconds, text):
    assert P.format_duration(seconds) == text


@pytest.mark.parametrize(
    "rate,text", [(None, "-- rows/s"), (2.5, "2.50 rows/s"), (0.029, "1.74 rows/min"), (0.001, "3.60 rows/h")]
)
def test_format_rate_picks_a_unit_that_gives_a_number_of_at_least_one(rate, text):
    assert P.format_rate(rate, "rows") == text


# --- the line --------------------------------------------------------------------------------------


def test_a_log_gets_plain_lines_at_start_each_tenth_and_end():
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=200)
    clock = Clock()
    with P.ProgressLine("annotate", 20, "rows", console=console, clock=clock, send_events=False) as line:
        line.advance(10, cached=True)
        for _ in range(10):
            clock.now += 2.0
            line.advance(1)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("annotate  0/20 rows")
    assert any(x.startswith("annotate  10/20 rows (10 cached)") for x in lines)
    assert any(x.startswith("annotate  12/20 rows (10 cached)  30.00 rows/min") for x in lines)  # 2 rows in 4 s
    assert lines[-1].startswith("annotate  20/20 rows (10 cached)  30.00 rows/min  left 0s")
    assert len(lines) == 7  # start, the cached tenths at once, a line per further tenth (2 rows); the last says the end


def test_events_go_to_the_descriptor_named_in_the_environment(monkeypatch):
    read_end, write_end = os.pipe()
    monkeypatch.setenv(P.PROGRESS_FD_ENV, str(write_end))
    monkeypatch.setattr(P, "EVENTS", P._EventPipe())
    with P.ProgressLine("answers", 3, "answers", show=False) as line:
        line.advance(1, cached=True)
        line.set_detail("ok 2")
        line.advance(2)
    P.EVENTS.stream.close()  # the child's end, as when it exits
    events: list[dict] = []
    with os.fdopen(read_end, encoding="utf-8") as stream:
        P.read_events(stream, events.append)
    assert [e["state"] for e in events] == ["start", "advance", "advance", "end"]
    assert (events[-1]["done"], events[-1]["cached"], events[-1]["total"]) == (3, 1, 3)
    assert events[-1]["detail"] == "ok 2" and {e["label"] for e in events} == {"answers"}


# --- selfprompt run ----------------------------------------------------------------------------------

QUESTIONS = [{"id": "q1", "question": "Name a primary colour."}, {"id": "q2", "question": "What is 2 + 3?"}]


def answers_experiment(tmp_path: Path, data_dir: Path, questions: Path, **extra) -> tuple[Experiment, Path]:
    spec = {
        "name": "progress",
        "data_dir": str(data_dir),
        "report": False,
        "answers": {
            "questions": str(questions),
            "limit": 2,
            "max_tokens": 8,
            "backend": "llamacpp",
            "systems": {"baseline": {"model": "default", "condition": "plain"}},
        },
        **extra,
    }
    path = tmp_path / "experiment.yaml"
    path.write_text(json.dumps(spec))  # JSON is YAML
    return Experiment.model_validate(spec), path


@pytest.mark.llamacpp
def test_the_runner_shows_a_real_stage_progress_and_ends_with_the_stage_table(tmp_path, data_dir):
    pytest.importorskip("llama_cpp")
    questions = tmp_path / "questions.jsonl"
    questions.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    exp, path = answers_experiment(tmp_path, data_dir, questions)
    out = io.StringIO()
    lines: list[str] = []
    outcome = run_experiment(
        exp, path, tmp_path / "run", log=lines.append, console=Console(file=out, force_terminal=False, width=250)
    )
    shown = out.getvalue()
    assert isinstance(outcome["answers-baseline"], float) and lines[0].startswith("[run ] answers-baseline")
    # The runner's own line, drawn from the stage's events: its label, 2 of 2 answers, none cached.
    assert re.search(r"answers-baseline: answers  2/2 answers  [\d.]+ answers/(s|min)", shown), shown
    table = shown[shown.index("stages in") :]
    assert re.search(r"answers-baseline\s+│\s+done\s+│", table), table
    # The full stage output stays in the stage folder's log, the stage's own progress lines included.
    log = next((tmp_path / "run").glob("answers-baseline-*/stage.log")).read_text()
    assert "2 answers in" in log and "answers  2/2 answers" in log

    out = io.StringIO()
    run_experiment(exp, path, tmp_path / "run", log=lines.append, console=Console(file=out, width=250))
    assert re.search(r"answers-baseline\s+│\s+skipped\s+│\s+\S+ \(earlier\)", out.getvalue()), out.getvalue()


def test_the_stage_table_lists_every_stage_when_one_fails(tmp_path, data_dir):
    bad = tmp_path / "questions.jsonl"
    bad.write_text(json.dumps({"question": "no id"}) + "\n")  # `judge answers` refuses it before loading a model
    eval_section = {
        "tasks": ["gsm8k"],
        "limit": 1,
        "max_tokens": 8,
        "systems": {"baseline": {"model": "default", "conditions": ["plain"]}},
    }
    exp, path = answers_experiment(tmp_path, data_dir, bad, eval=eval_section)
    exp = exp.model_copy(update={"report": True})
    root = tmp_path / "run"
    stages = plan(exp, tmp_path, data_dir)
    assign_keys(stages)
    done = root / stages[0].folder_name  # eval-baseline: marked done, so it is skipped
    done.mkdir(parents=True)
    (done / DONE_FILE).write_text(json.dumps({"key": stages[0].key, "seconds": 61.0}))
    out = io.StringIO()
    with pytest.raises(SelfPromptError, match="stage 'answers-baseline' failed"):
        run_experiment(exp, path, root, log=lambda line: None, console=Console(file=out, width=250))
    table = out.getvalue()
    assert [s.name for s in stages] == ["eval-baseline", "answers-baseline", "report"]
    assert re.search(r"eval-baseline\s+│\s+skipped\s+│\s+1m01s \(earlier\)\s+│\s+eval-baseline-", table), table
    assert re.search(r"answers-baseline\s+│\s+failed\s+│\s+\d+s\s+│", table), table
    assert re.search(r"report\s+│\s+not run\s+│\s+│\s+report-", table), table


def test_the_clock_stops_when_the_work_is_done():
    clock = Clock()
    with P.ProgressLine("judge", None, "replies", show=False, send_events=False, clock=clock) as line:
        line.add_total(4)
        clock.now = 8.0
        line.advance(4)
        clock.now = 100.0  # saving, closing: not the judge's time
        assert line.tally.rate() == pytest.approx(0.5)
        line.add_total(2)  # a retry round: the clock runs again
        clock.now = 104.0
        line.advance(2)
        assert line.tally.rate() == pytest.approx(6 / 104)


def test_no_events_into_a_descriptor_that_is_not_a_pipe(monkeypatch, tmp_path):
    with (tmp_path / "other.txt").open("w") as other:  # inherited the variable, not the pipe: fd is a file
        monkeypatch.setenv(P.PROGRESS_FD_ENV, str(other.fileno()))
        monkeypatch.setattr(P, "EVENTS", P._EventPipe())
        with P.ProgressLine("eval", 2, show=False) as line:
            line.advance(2)
        assert P.EVENTS.stream is None
    assert (tmp_path / "other.txt").read_text() == ""


# --- work inside a batch ------------------------------------------------------------------------------


def test_steps_inside_a_batch_show_but_are_not_items(monkeypatch):
    read_end, write_end = os.pipe()
    monkeypatch.setenv(P.PROGRESS_FD_ENV, str(write_end))
    monkeypatch.setattr(P, "EVENTS", P._EventPipe())
    clock = Clock()
    with P.ProgressLine("eval gsm8k/plain", 8, show=False, clock=clock) as line:
        clock.now = 30.0
        P.report_step(37, 256, 8)  # what a backend calls at a decoding step
        assert "0/8 items  [batch of 8: 37/256 tokens]  -- items/s  left --" in line.text()
        clock.now = 30.1
        P.report_step(38, 256, 8)  # within STEP_EVERY_S: shown, no event
        clock.now = 31.0
        P.report_step(60, 256, 8)
        assert "[batch of 8: 60/256 tokens]" in line.text()
        clock.now = 40.0
        line.advance(8)  # the batch's items are counted: the step is gone, the rate is items over time
        assert "[batch" not in line.text() and "8/8 items  12.00 items/min" in line.text()
    P.report_step(1, 2, 1)  # no open line: nothing happens
    P.EVENTS.stream.close()
    events: list[dict] = []
    with os.fdopen(read_end, encoding="utf-8") as stream:
        P.read_events(stream, events.append)
    assert [e["state"] for e in events] == ["start", "step", "step", "advance", "end"]
    assert [e["step"]["done"] for e in events if e["state"] == "step"] == [37, 60]
    assert all(e["done"] == 0 for e in events if e["state"] == "step")  # no invented items
    assert events[-2]["step"] is None and events[-2]["done"] == 8


def test_the_runner_draws_a_stage_step(monkeypatch):
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=250)
    with P.ProgressLine("eval", None, console=console, send_events=False, summary=False) as line:
        step = {"done": 5, "total": 12, "unit": "tokens", "items": 2}
        line.update(label="eval: eval gsm8k/plain", unit="items", done=0, cached=0, total=2, step=step)
        assert line.text().startswith("eval: eval gsm8k/plain  0/2 items  [batch of 2: 5/12 tokens]")
    events: list[dict] = []
    P.read_events(io.StringIO(json.dumps({"label": "x", "done": 0, "step": {"done": 1}}) + "\n"), events.append)
    assert events[0]["step"] is None  # a malformed step is dropped, not drawn


@pytest.mark.slow
def test_a_real_eval_reports_decoding_steps_before_its_first_item_finishes(tmp_path, data_dir):
    """The eval stage as `selfprompt run` starts it: its events through the PROGRESS_FD_ENV pipe, its output
    piped (not a terminal). One batch of 2 items, 12 tokens each, on the embedded model (hf backend)."""
    import subprocess
    import sys

    read_end, write_end = os.pipe()
    args = ["eval", "--model", "default", "--tasks", "gsm8k", "--limit", "2", "--batch-size", "2"]
    args += [
        "--max-tokens",
        "12",
        "--trigger-max-tokens",
        "4",
        "--out",
        str(tmp_path / "e"),
        "--data-dir",
        str(data_dir),
    ]
    proc = subprocess.Popen(
        [sys.executable, "-c", "from selfprompt.cli import main; main()", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, P.PROGRESS_FD_ENV: str(write_end)},
        pass_fds=(write_end,),
    )
    os.close(write_end)
    events: list[dict] = []
    with os.fdopen(read_end, encoding="utf-8") as stream:
        P.read_events(stream, events.append)
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    first_item = next(i for i, e in enumerate(events) if e["done"] - e["cached"] > 0)
    steps = [e for e in events[:first_item] if e["state"] == "step"]
    # The answering pass reports its tokens (of --max-tokens) while no item is done, up to its last token.
    answering = [e["step"] for e in steps if e["step"]["total"] == 12]
    assert answering and answering[-1] == {"done": 12, "total": 12, "unit": "tokens", "items": 2}, steps
    assert all(e["done"] == 0 and e["label"] == "eval gsm8k/plain" for e in steps)
    assert events[first_item]["step"] is None and events[-1]["done"] == 2
    # The line in the piped output is plain, and transformers' weight-loading bar stays out of it.
    assert "eval gsm8k/plain  2/2 items" in stderr and "Loading weights" not in stderr, stderr
