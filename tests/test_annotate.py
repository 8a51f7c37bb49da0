"""The annotate stage end to end against llama.cpp's real OpenAI-compatible server (default model).

Faults, refusals and off-format replies come from a real proxy on 127.0.0.1 in front of it
(tests/faultproxy.py); the kill -9 test kills a real `selfprompt annotate` process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from selfprompt.annotate.run import AnnotateConfig, TeacherRejected, run_annotate
from selfprompt.data import load_examples
from selfprompt.jsonl import read_records
from selfprompt.records import RoleExample

from faultproxy import FaultProxy

pytestmark = pytest.mark.llamacpp
SELFPROMPT = str(Path(sys.executable).parent / "selfprompt")
STATUSES = {"ok", "refused", "invalid", "error"}


def config(out: Path, base_url: str, data_dir: Path, **kw) -> AnnotateConfig:
    kw.setdefault("max_tokens", 32)  # a short role prompt (cut to its last full sentence) keeps CI fast on 2 cores
    return AnnotateConfig(
        out=out,
        data="lima",
        data_dir=str(data_dir),
        teacher="default",
        backend="openai",
        base_url=base_url,
        api_key_env="SELFPROMPT_TEST_NO_KEY",
        **kw,
    )


def assert_one_row_per_input_in_order(out: Path, expected_ids: list[str]) -> list[RoleExample]:
    rows = read_records(out, RoleExample)
    assert [r.id for r in rows] == expected_ids
    for r in rows:
        assert r.annotation.status in STATUSES
        assert (r.annotation.status == "ok") == bool(r.role_prompt)
        assert r.annotation.status == "ok" or r.annotation.reason  # every non-ok row says why
    return rows


def test_thirty_lima_rows_each_get_a_status_and_the_summary_adds_up(llama_server, data_dir, tmp_path):
    out = tmp_path / "lima_role.jsonl"
    cfg = config(out, llama_server, data_dir, limit=30, concurrency=4, max_attempts=1)
    summary = run_annotate(cfg, show_progress=False)

    ids = [e.id for e in load_examples("lima", data_dir=data_dir, limit=30)]
    rows = assert_one_row_per_input_in_order(out, ids)
    assert summary["rows"] == summary["input_rows"] == 30
    assert sum(summary["status"].values()) == 30
    assert summary["status"]["ok"] == sum(r.annotation.status == "ok" for r in rows) > 0
    assert summary["usage"]["total_tokens"] == sum(r.annotation.usage.total_tokens for r in rows) > 0
    assert summary["this_run"]["requests_sent"] == sum(r.annotation.attempts for r in rows)
    for r in rows:
        assert r.annotation.teacher == "default" and r.annotation.template_version == "1"
        if r.annotation.status == "ok":
            assert " you" in f" {r.role_prompt.lower()}" and r.role_prompt not in r.answer
    assert json.loads(cfg.summary_path.read_text()) == summary
    manifest = json.loads(cfg.manifest_path.read_text())
    assert manifest["stage"] == "annotate" and manifest["config"]["limit"] == 30 and manifest["data"]


def test_kill_minus_9_mid_run_resumes_exactly_and_a_finished_rerun_sends_nothing(llama_server, data_dir, tmp_path):
    limit = 8
    out = tmp_path / "role.jsonl"
    with FaultProxy(llama_server, retry_after=0.5, delay=0.4) as proxy:
        proxy.faults.extend(["429", "drop", "500"])  # faults during the run that is killed
        cmd = [
            SELFPROMPT,
            "annotate",
            "--out",
            str(out),
            "--data",
            "lima",
            "--data-dir",
            str(data_dir),
            "--limit",
            str(limit),
            "--teacher",
            "default",
            "--backend",
            "openai",
            "--base-url",
            proxy.base_url,
            "--api-key-env",
            "SELFPROMPT_TEST_NO_KEY",
            "--max-tokens",
            "16",
            "--max-attempts",
            "1",
            "--concurrency",
            "2",
            "--no-progress",
        ]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if out.exists() and out.read_bytes().count(b"\n") >= 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()[0].decode()[-2000:]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        written_before_kill = out.read_bytes().count(b"\n")
        assert 2 <= written_before_kill < limit
        requests_before_resume = proxy.chat_requests

        resumed = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
        assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
        ids = [e.id for e in load_examples("lima", data_dir=data_dir, limit=limit)]
        assert_one_row_per_input_in_order(out, ids)
        summary = json.loads(out.with_name(out.name + ".summary.json").read_text())
        assert summary["this_run"]["rows_resumed_from_output"] == written_before_kill
        # Rows already written were not asked again: at most the rows left plus those in flight at the kill.
        assert proxy.chat_requests - requests_before_resume <= limit - written_before_kill

        finished = proxy.chat_requests
        rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert rerun.returncode == 0
        assert proxy.chat_requests == finished  # zero requests for a finished job
        assert_one_row_per_input_in_order(out, ids)


def test_refusing_and_off_format_teacher_gives_refused_and_invalid_rows_with_reasons(llama_server, tmp_path):
    source = tmp_path / "alpaca.jsonl"
    rows = [
        {"instruction": "How do volcanoes form? (REFUSE)", "output": "Magma rises through the crust."},
        {"instruction": "What is the capital of France? (OFFFORMAT)", "output": "Paris"},
        {"instruction": "How many legs does a spider have? (LEAK)", "output": "A spider has eight legs.\n#### 8"},
        {"instruction": "Explain photosynthesis. (GOOD)", "output": "Plants turn light into sugar."},
    ]
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    good = (
        "From now on, you are a plant biologist who has studied how leaves capture light for twenty years. "
        "You explain biology with clear examples and patience."
    )
    replies = {
        "REFUSE": "I'm sorry, but I cannot help with that request.",
        "OFFFORMAT": "The capital of France is Paris, a city that has been the political and cultural centre "
        "of the country for many centuries and remains so today.",
        "LEAK": "From now on, you are an expert on spiders. You know that the answer is 8 and you explain it well.",
        "GOOD": good,
    }

    def rewrite(request: dict) -> str | None:
        question = _question_of(request)
        return next(text for key, text in replies.items() if f"({key})" in question)

    with FaultProxy(llama_server) as proxy:
        proxy.rewrite = rewrite
        cfg = AnnotateConfig(
            out=tmp_path / "out.jsonl",
            data=str(source),
            field_map={"question": "instruction", "answer": "output"},
            teacher="default",
            backend="openai",
            base_url=proxy.base_url,
            api_key_env="SELFPROMPT_TEST_NO_KEY",
            max_tokens=1,
            max_attempts=2,
            concurrency=1,
        )
        summary = run_annotate(cfg, show_progress=False)
        out = read_records(cfg.out, RoleExample)
        by_marker = {r.question.split("(")[-1].rstrip(")"): r for r in out}
        assert [r.question for r in out] == [r["instruction"] for r in rows]

        assert by_marker["REFUSE"].annotation.status == "refused"
        assert by_marker["REFUSE"].annotation.reason.startswith("refusal: I'm sorry")
        assert by_marker["REFUSE"].annotation.attempts == 1  # a refusal is kept, not retried
        assert by_marker["OFFFORMAT"].annotation.status == "invalid"
        assert "second person" in by_marker["OFFFORMAT"].annotation.reason
        assert by_marker["OFFFORMAT"].annotation.attempts == 2  # retried once with feedback
        assert by_marker["LEAK"].annotation.status == "invalid"
        assert "final answer '8'" in by_marker["LEAK"].annotation.reason
        assert by_marker["GOOD"].annotation.status == "ok" and by_marker["GOOD"].role_prompt == good
        assert summary["status"] == {"ok": 1, "refused": 1, "invalid": 2, "error": 0}
        assert proxy.chat_requests == 1 + 2 + 2 + 1

        # A teacher that rejects the key stops the run with a clear error; rows written stay, none is faked.
        proxy.faults.append("401")
        cfg401 = cfg.model_copy(update={"out": tmp_path / "out401.jsonl", "cache": None})
        with pytest.raises(TeacherRejected, match="401"):
            run_annotate(cfg401, show_progress=False)
        assert cfg401.out.read_text() == ""


def _question_of(request: dict) -> str:
    # The source question is the last user turn (or the first user turn after the exemplars on retries).
    users = [m["content"] for m in request["messages"] if m["role"] == "user"]
    return next(u for u in reversed(users) if "Question:" in u)


def test_dry_run_and_bad_input_send_nothing_and_name_file_and_line(tmp_path, data_dir):
    out = tmp_path / "x.jsonl"
    dead_url = "http://127.0.0.1:9/v1"  # nothing listens there: any request would fail loudly
    dry = subprocess.run(
        [
            SELFPROMPT,
            "annotate",
            "--out",
            str(out),
            "--data-dir",
            str(data_dir),
            "--limit",
            "5",
            "--base-url",
            dead_url,
            "--dry-run",
            "--price-in",
            "1",
            "--price-out",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert plan["requests"] == {"expected": 5, "at_most": 15}
    assert plan["estimated_tokens"]["expected"]["prompt_tokens"] > 5 * 500  # five few-shot prompts
    assert plan["estimated_cost"]["expected"] > 0 and not out.exists()

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "ok", "output": "ok"}\n{"instruction": 3\n')
    run = subprocess.run(
        [
            SELFPROMPT,
            "annotate",
            "--out",
            str(out),
            "--data",
            str(bad),
            "--field-map",
            "question=instruction,answer=output",
            "--base-url",
            dead_url,
            "--dry-run",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2 and f"{bad}:2" in run.stderr
    run = subprocess.run(
        [SELFPROMPT, "annotate", "--out", str(out), "--data", str(bad), "--field-map", "question", "--dry-run"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2 and "--field-map" in run.stderr


def test_retry_errors_redoes_failed_rows_and_only_their_requests(llama_server, data_dir, tmp_path):
    out = tmp_path / "lima_role.jsonl"
    with FaultProxy(llama_server) as proxy:
        # Row 2's only attempt dies on a 500 with no retries left: it is written with status 'error'.
        proxy.faults.extend(["forward", "500"])
        cfg = config(out, proxy.base_url, data_dir, limit=3, concurrency=1, max_attempts=1, max_retries=0)
        run_annotate(cfg, show_progress=False)
        first = read_records(out, RoleExample)
        assert [r.annotation.status == "error" for r in first] == [False, True, False]

        before = proxy.chat_requests
        run_annotate(cfg, show_progress=False)  # a plain rerun keeps the error row as it is
        assert proxy.chat_requests == before and read_records(out, RoleExample) == first

        run_annotate(cfg.model_copy(update={"retry_errors": True}), show_progress=False)
        assert proxy.chat_requests == before + 1  # only the failed row; row 3 comes from the cache
    rows = assert_one_row_per_input_in_order(out, [r.id for r in first])
    assert rows[1].annotation.status != "error"
    assert rows[0] == first[0] and rows[2].role_prompt == first[2].role_prompt


def test_exhausted_quota_stops_the_run_with_a_clear_message_and_resumes_once_it_is_back(
    llama_server, data_dir, tmp_path
):
    limit = 4
    out = tmp_path / "lima_role.jsonl"
    ids = [e.id for e in load_examples("lima", data_dir=data_dir, limit=limit)]
    with FaultProxy(llama_server) as proxy:
        proxy.faults.extend(["forward"] * 2 + ["quota"] * 50)  # two replies, then no quota until reset
        cfg = config(out, proxy.base_url, data_dir, limit=limit, concurrency=2, max_attempts=1, max_retries=6)
        with pytest.raises(TeacherRejected, match="out of quota.*insufficient_quota.*rerun the same command"):
            run_annotate(cfg, show_progress=False)
        # No retries, no backoff: each request in flight met the quota once, and nothing was sent after it.
        assert proxy.applied.count("quota") <= cfg.concurrency and proxy.applied[:2] == ["forward"] * 2
        stopped_at = proxy.chat_requests
        done = read_records(out, RoleExample)
        assert [r.id for r in done] == ids[: len(done)] and len(done) <= 2
        assert all(r.annotation.status != "error" for r in done)  # no row was written off as an error

        proxy.faults.clear()  # the quota is back
        summary = run_annotate(cfg, show_progress=False)
        rows = assert_one_row_per_input_in_order(out, ids)
        assert rows[: len(done)] == done  # nothing written before was lost or redone
        assert all(r.annotation.status != "error" for r in rows)
        assert summary["this_run"]["rows_resumed_from_output"] == len(done)
        # Replies received before the stop come from the cache: only the rows never answered are sent.
        assert proxy.chat_requests - stopped_at == limit - 2


def test_the_embedded_teacher_runs_offline_with_no_backend_flag_and_a_rerun_sends_nothing(tmp_path, data_dir):
    """`selfprompt annotate --data lima --limit N --teacher default --out X`: the backend is inferred (the
    embedded default runs in-process on llama.cpp), so no key and no server are needed; a rerun is free."""
    pytest.importorskip("llama_cpp")
    out = tmp_path / "x.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}  # no key, no server to fall back on
    command = [
        SELFPROMPT,
        "annotate",
        "--data",
        "lima",
        "--limit",
        "2",
        "--teacher",
        "default",
        "--out",
        str(out),
        "max_attempts=1",
        "max_tokens=24",
    ]  # short replies, one per row: the test is about the backend
    first = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    summary = json.loads(out.with_name(out.name + ".summary.json").read_text())
    run = summary["this_run"]
    assert summary["rows"] == 2 and run["requests_sent"] - run["transport_retries"] == 2  # one reply per row
    manifest = json.loads(out.with_name(out.name + ".manifest.json").read_text())
    assert manifest["backend"] == "llamacpp" and manifest["config"]["backend"] == "auto"
    again = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    summary = json.loads(out.with_name(out.name + ".summary.json").read_text())
    assert summary["this_run"]["requests_sent"] == 0 and summary["rows"] == 2
