"""`selfprompt judge answers` keeps its answers in a keyed generation cache, as eval does: a run killed with
SIGKILL resumes without redoing or duplicating an answer, and a finished rerun generates nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

SELFPROMPT = str(Path(sys.executable).parent / "selfprompt")
QUESTIONS = ["Name a colour.", "Name a fruit.", "Name a river.", "Name a planet."]


def complete_rows(path: Path) -> list[dict]:
    """The whole lines of a JSONL file (a kill may leave a torn last line, which the next run cuts)."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    return [json.loads(line) for line in text.split("\n")[:-1] if line.strip()]


def test_a_killed_judge_answers_resumes_without_regenerating_what_it_holds(tmp_path, data_dir):
    questions = tmp_path / "questions.jsonl"
    questions.write_text(
        "".join(json.dumps({"id": f"q{i}", "question": q}) + "\n" for i, q in enumerate(QUESTIONS)), encoding="utf-8"
    )
    out = tmp_path / "answers"
    cache = out / "generations" / "answers__plain.jsonl"
    cmd = [
        SELFPROMPT,
        "judge",
        "answers",
        "--model",
        "default",
        "--condition",
        "plain",
        "--questions",
        str(questions),
        "--limit",
        "3",
        "--max-tokens",
        "8",
        "--batch-size",
        "1",
        "--out",
        str(out),
    ]
    env = {**os.environ, "SELFPROMPT_DATA_DIR": str(data_dir), "COLUMNS": "1000"}  # COLUMNS: no wrapped lines

    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and proc.poll() is None and not complete_rows(cache):
            time.sleep(0.02)
        assert proc.poll() is None, proc.communicate()[0].decode()[-2000:]
        os.kill(proc.pid, signal.SIGKILL)  # mid-run: one batch of one answer is in the cache, two are not
    finally:
        proc.kill()
        proc.wait()
    before = complete_rows(cache)
    assert 1 <= len(before) < 3, before
    assert not (out / "answers.jsonl").exists()  # the output is written only when every answer is there

    resumed = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"3 answers in {out / 'answers.jsonl'} ({3 - len(before)} generated now)" in resumed.stderr
    after = complete_rows(cache)
    assert after[: len(before)] == before  # the killed run's answers are kept as they were, not redone
    assert len(after) == 3 and len({r["key"] for r in after}) == 3  # nothing generated twice
    rows = complete_rows(out / "answers.jsonl")
    assert [r["id"] for r in rows] == ["q0", "q1", "q2"]
    assert [r["question"] for r in rows] == QUESTIONS[:3]
    assert {r["key"]: r for r in rows} == {r["key"]: r for r in after}  # the output is the cache's answers

    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0 and "(0 generated now)" in again.stderr, again.stderr[-2000:]
    assert complete_rows(cache) == after
