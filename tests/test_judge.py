"""Pairwise judge against a real judge: llama.cpp's server (default model) on loopback.

The 135M judge rarely writes a clean verdict, so most checks put a rewriting proxy between the
judge CLI and the server: the proxy forwards every request to the real server, keeps the model's
real reasoning, and replaces the verdict line according to a per-question script (always prefer
system A; always prefer the first position; answer garbage first; never answer properly). It also
counts the requests that reach the server, which proves the rerun sends none.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi import Request  # module level: FastAPI resolves the string annotation from module globals

from selfprompt.evaluate.judge import FEEDBACK, AnswerRow, judged_text, parse_json_verdict, parse_verdict

from conftest import free_port

# --- strict verdict parsing (no server) ----------------------------------------------------------


@pytest.mark.parametrize(
    "text,verdict",
    [
        ("A is more accurate.\n[[A]]", "A"),
        ("Both fine.\n\n[[C]]  \n", "C"),
        ("Verdict: [[B]]", "B"),
        ("B explains more. [[B]]\nFinal: [[B]]", "B"),  # the same verdict twice is still one verdict
    ],
)
def test_parse_verdict_accepts_one_final_verdict(text, verdict):
    assert parse_verdict(text).verdict == verdict


@pytest.mark.parametrize(
    "text,problem",
    [
        ("", "empty"),
        ("Answer A is better.", "no [[A]]"),
        ("[[A]] at first, but on reflection [[B]]", "conflicting"),
        ("[[A]]\nThat is my verdict because A is shorter.", "last line"),
        ("I pick [A] or [[D]]", "no [[A]]"),
    ],
)
def test_parse_verdict_rejects_what_it_cannot_read(text, problem):
    parsed = parse_verdict(text)
    assert parsed.verdict is None and problem in parsed.problem


@pytest.mark.parametrize(
    "text,verdict",
    [
        ('{"comparison": "A is right.", "verdict": "A"}', "A"),
        ('{"comparison": "", "verdict": "tie"}', "C"),
        (' {"verdict": "B", "comparison": "B is kinder."}\n', "B"),
    ],
)
def test_parse_json_verdict_accepts_the_schema(text, verdict):
    assert parse_json_verdict(text).verdict == verdict


@pytest.mark.parametrize(
    "text,problem",
    [
        ('{"comparison": "A is right.", "verdict": "C"}', "not one of"),  # tags-format letter in JSON mode
        ('{"comparison": "cut at max_tok', "not JSON"),
        ('{"verdict": "A"}', "exactly"),
        ('{"comparison": "x", "verdict": "A", "score": 9}', "exactly"),
        ("[[A]]", "not JSON"),
        ("", "empty"),
    ],
)
def test_parse_json_verdict_rejects_anything_else(text, problem):
    parsed = parse_json_verdict(text)
    assert parsed.verdict is None and problem in parsed.problem


def test_roles_are_stripped_unless_kept():
    row = AnswerRow(id=1, question="q", answer="The answer.", role="From now on, you are a botanist.")
    assert row.id == "1"
    assert judged_text(row, keep_roles=False) == "The answer."
    assert judged_text(row, keep_roles=True) == "From now on, you are a botanist.\n\nThe answer."
    tagged = AnswerRow(id="2", question="q", answer="<role>\nFrom now on, you are a chef.\n</role>\n\nBoil it.")
    assert judged_text(tagged, keep_roles=False) == "Boil it."


# --- the rewriting proxy -------------------------------------------------------------------------

# Each question carries a tag that tells the proxy what verdict to write.
QUESTIONS = {
    "q-prefer-a": "[prefer-a] What is a good way to learn a new language?",
    "q-first-slot": "[first-slot] How do plants make food?",
    "q-garbage-once": "[garbage-once] Why do we need sleep?",
    "q-never": "[never] What causes tides?",
}
ANSWERS_A = {
    "q-prefer-a": "Practise daily with native speakers (alpha).",
    "q-first-slot": "Photosynthesis (alpha).",
    "q-garbage-once": "Sleep restores the brain (alpha).",
    "q-never": "The moon's gravity (alpha).",
}
ANSWERS_B = {
    "q-prefer-a": "Buy a book (beta).",
    "q-first-slot": "They eat soil (beta).",
    "q-garbage-once": "Nobody knows (beta).",
    "q-never": "Wind (beta).",
}
ROLE_A = "From now on, you are an expert tutor named Zorblax."


def forced_reply(real_text: str, body: dict) -> str:
    """The judge's real reasoning with its verdicts removed, then the verdict the script wants."""
    user = body["messages"][1]["content"]
    retry = any(m["content"] == FEEDBACK for m in body["messages"])
    reasoning = re.sub(r"\[\[[ABC]\]\]", "", real_text).strip() or "(no reasoning)"
    first_is_a = user.index("(alpha)") < user.index("(beta)")
    if "[prefer-a]" in user:
        verdict = "[[A]]" if first_is_a else "[[B]]"
    elif "[first-slot]" in user:
        verdict = "[[A]]"
    elif "[garbage-once]" in user:
        verdict = "[[C]]" if retry else "I cannot decide."
    else:
        verdict = "Both have merit; [[A]] or maybe [[B]]."
    return f"{reasoning}\n{verdict}"


class RewritingProxy:
    def __init__(self, upstream: str):
        import uvicorn
        from fastapi import FastAPI

        self.upstream, self.count, self.bodies = upstream, 0, []
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def chat(request: Request):
            body = await request.json()
            self.count += 1
            self.bodies.append(body)
            async with httpx.AsyncClient(timeout=120) as client:
                reply = (await client.post(f"{self.upstream}/chat/completions", json=body)).json()
            message = reply["choices"][0]["message"]
            message["content"] = forced_reply(message.get("content") or "", body)
            return reply

        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> RewritingProxy:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def write_answers(path: Path, answers: dict[str, str], role: str | None = None) -> Path:
    rows = [{"id": i, "question": QUESTIONS[i], "answer": a, "role": role} for i, a in answers.items()]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def run_cli(*args: str) -> subprocess.CompletedProcess:
    exe = str(Path(sys.executable).parent / "selfprompt")
    proc = subprocess.run([exe, *args], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.llamacpp
def test_judge_both_orders_inconsistency_retries_errors_and_free_rerun(llama_server, tmp_path):
    a = write_answers(tmp_path / "a.jsonl", ANSWERS_A, role=ROLE_A)
    b = write_answers(tmp_path / "b.jsonl", ANSWERS_B)
    out = tmp_path / "judge"
    args = [
        "judge",
        "--a",
        str(a),
        "--b",
        str(b),
        "--out",
        str(out),
        "--judge",
        "default",
        "--judge-backend",
        "openai",
        "--max-tokens",
        "16",
        "--max-verdict-attempts",
        "3",
    ]
    with RewritingProxy(llama_server) as proxy:
        run_cli(*args, "--base-url", proxy.base_url)
        first_count = proxy.count
        # Both orders of 4 pairs, one retry per order for garbage-once, two per order for never.
        assert first_count == 8 + 2 + 4
        assert not any("Zorblax" in json.dumps(body) for body in proxy.bodies), "roles are stripped"
        first = json.loads((out / "results.json").read_text())
        items = {r["id"]: r for r in map(json.loads, (out / "judgments.jsonl").read_text().splitlines())}

        run_cli(*args, "--base-url", proxy.base_url)
        assert proxy.count == first_count, "the rerun sends zero requests"
        second = json.loads((out / "results.json").read_text())
        assert second["requests"]["requests_sent"] == 0 and second["requests"]["cache_hits"] == 14

    assert {k: first[k] for k in ("win", "tie", "loss", "error")} == {"win": 1, "tie": 2, "loss": 0, "error": 1}
    assert items["q-prefer-a"]["outcome"] == "win" and not items["q-prefer-a"]["inconsistent"]
    assert (items["q-prefer-a"]["verdict_ab"], items["q-prefer-a"]["verdict_ba"]) == ("A", "B")
    assert items["q-first-slot"]["outcome"] == "tie" and items["q-first-slot"]["inconsistent"]
    assert items["q-garbage-once"]["outcome"] == "tie" and items["q-garbage-once"]["attempts_ab"] == 2
    # garbage-once: both orders said [[C]] after one retry each: a consistent tie.
    assert not items["q-garbage-once"]["inconsistent"]
    never = items["q-never"]
    assert never["outcome"] == "error" and never["attempts_ab"] == 3 and "conflicting" in never["error"]
    assert never["verdict_ab"] is None and len(never["problems"]) == 6
    assert first["n_judged"] == 3 and first["inconsistency_rate"] == pytest.approx(1 / 3)
    assert first["adjusted_win_rate"] == pytest.approx((1 + 0.5 * 2) / 3)
    low, high = first["win_rate_ci"]
    assert 0 <= low <= first["adjusted_win_rate"] <= high <= 1
    assert all(items[i]["reasoning_ab"] for i in ("q-prefer-a", "q-first-slot")), "the judge's reasoning is kept"
    assert (out / "manifest.json").exists()
    # A rerun reads the same cached replies: identical results.
    assert {k: v for k, v in second.items() if k != "requests"} == {k: v for k, v in first.items() if k != "requests"}


@pytest.mark.llamacpp
def test_keep_roles_shows_the_judge_the_role(llama_server, tmp_path):
    a = write_answers(tmp_path / "a.jsonl", {"q-prefer-a": ANSWERS_A["q-prefer-a"]}, role=ROLE_A)
    b = write_answers(tmp_path / "b.jsonl", {"q-prefer-a": ANSWERS_B["q-prefer-a"]})
    with RewritingProxy(llama_server) as proxy:
        run_cli(
            "judge",
            "--a",
            str(a),
            "--b",
            str(b),
            "--out",
            str(tmp_path / "j"),
            "--judge-backend",
            "openai",
            "--base-url",
            proxy.base_url,
            "--max-tokens",
            "8",
            "--keep-roles",
        )
        assert proxy.count == 2 and all("Zorblax" in json.dumps(body) for body in proxy.bodies)


@pytest.mark.llamacpp
def test_unscripted_real_judge_every_item_is_judged_or_recorded(llama_server, tmp_path):
    """No proxy: whatever the 135M judge writes, each item has two verdicts or an error with reasons."""
    a = write_answers(tmp_path / "a.jsonl", {k: ANSWERS_A[k] for k in ("q-first-slot",)})
    b = write_answers(tmp_path / "b.jsonl", {k: ANSWERS_B[k] for k in ("q-first-slot",)})
    out = tmp_path / "real"
    run_cli(
        "judge",
        "--a",
        str(a),
        "--b",
        str(b),
        "--out",
        str(out),
        "--judge-backend",
        "openai",
        "--base-url",
        llama_server,
        "--max-tokens",
        "32",
        "--max-verdict-attempts",
        "2",
    )
    results = json.loads((out / "results.json").read_text())
    items = [json.loads(line) for line in (out / "judgments.jsonl").read_text().splitlines()]
    assert results["win"] + results["tie"] + results["loss"] + results["error"] == results["n_pairs"] == 1
    for item in items:
        if item["outcome"] == "error":
            assert item["error"] and item["problems"], "an error says why"
        else:
            assert item["verdict_ab"] in "ABC" and item["verdict_ba"] in "ABC"
    sent = results["requests"]["requests_sent"]
    assert 2 <= sent <= 4 and sent == 2 + results["verdict_retries"]


@pytest.mark.llamacpp
def test_json_verdicts_from_the_in_process_judge_are_always_readable(tmp_path):
    """The 135M judge never writes a tag line unaided (see above); constrained by the JSON schema through
    llama.cpp's grammar, every order of every pair has a verdict at the first reply, and a rerun is free."""
    ids = ("q-prefer-a", "q-first-slot", "q-never")
    a = write_answers(tmp_path / "a.jsonl", {k: ANSWERS_A[k] for k in ids})
    b = write_answers(tmp_path / "b.jsonl", {k: ANSWERS_B[k] for k in ids})
    out = tmp_path / "json"
    args = (
        "judge",
        "--a",
        str(a),
        "--b",
        str(b),
        "--out",
        str(out),
        "--judge-backend",
        "llamacpp",
        "--verdict-format",
        "json",
        "--max-tokens",
        "96",
    )
    run_cli(*args)
    first = json.loads((out / "results.json").read_text())
    items = [json.loads(line) for line in (out / "judgments.jsonl").read_text().splitlines()]
    assert first["template"] == "pairwise-json-v1" and first["n_judged"] == 3 and first["error"] == 0
    assert first["verdict_retries"] == 0 and first["requests"]["requests_sent"] == 6
    assert all(it["verdict_ab"] in "ABC" and it["verdict_ba"] in "ABC" for it in items)
    assert first["inconsistent"] == sum(it["inconsistent"] for it in items)
    run_cli(*args)
    again = json.loads((out / "results.json").read_text())
    assert again["requests"]["requests_sent"] == 0
    assert {k: v for k, v in again.items() if k != "requests"} == {k: v for k, v in first.items() if k != "requests"}


def test_json_verdicts_are_refused_for_a_judge_without_structured_output(tmp_path):
    a = write_answers(tmp_path / "a.jsonl", {"q-never": ANSWERS_A["q-never"]})
    exe = str(Path(sys.executable).parent / "selfprompt")
    proc = subprocess.run(
        [
            exe,
            "judge",
            "--a",
            str(a),
            "--b",
            str(a),
            "--out",
            str(tmp_path / "j"),
            "--judge-backend",
            "hf",
            "--verdict-format",
            "json",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0 and "structured output" in proc.stderr and not (tmp_path / "j").exists()


@pytest.mark.llamacpp
def test_exhausted_quota_stops_the_judge_and_a_rerun_resumes(llama_server, tmp_path):
    from faultproxy import FaultProxy

    ids = ("q-prefer-a", "q-first-slot")
    a = write_answers(tmp_path / "a.jsonl", {k: ANSWERS_A[k] for k in ids})
    b = write_answers(tmp_path / "b.jsonl", {k: ANSWERS_B[k] for k in ids})
    out = tmp_path / "judge"
    with FaultProxy(llama_server) as proxy:
        args = [
            "judge",
            "--a",
            str(a),
            "--b",
            str(b),
            "--out",
            str(out),
            "--judge-backend",
            "openai",
            "--base-url",
            proxy.base_url,
            "--max-tokens",
            "8",
            "--max-verdict-attempts",
            "1",
            "--concurrency",
            "1",
        ]
        proxy.faults.extend(["forward", "forward"] + ["quota"] * 20)  # two replies, then the quota is gone
        exe = str(Path(sys.executable).parent / "selfprompt")
        stopped = subprocess.run([exe, *args], capture_output=True, text=True, timeout=600)
        assert stopped.returncode == 2 and "Traceback" not in stopped.stderr
        message = " ".join(stopped.stderr.split())
        assert "insufficient_quota" in message and "quota is exhausted" in message and "rerun" in message
        assert proxy.applied == ["forward", "forward", "quota"], "no retry and nothing sent after the quota error"
        assert not (out / "results.json").exists()

        proxy.faults.clear()  # quota back: the two replies received are cached, the two others are asked
        run_cli(*args)
        assert proxy.chat_requests == 3 + 2
    results = json.loads((out / "results.json").read_text())
    assert results["n_pairs"] == 2 and results["requests"]["cache_hits"] == 2
