"""`selfprompt serve` (hf backend, default model) under concurrent streaming clients, in one run.

    nice -n 19 .venv/bin/python bench/serve.py [--clients 16] [--questions 50] [--max-tokens 24] [--rounds 3]

The same 50 different questions (the first of Vicuna bench) sent by one client (one after another) and by 16
clients at once (each streaming the next question as soon as its last answer ended, so 16 streams are open until
the last questions), alternating for --rounds rounds (who goes first alternating); aggregate completion tokens/s
of each side (token counts from the server's usage chunk), median and spread. Equal-output condition: greedy
decoding, so every round's concurrent answers must equal the one-client answers text for text (checked and
recorded). Annotation through the server (concurrency 1 vs 8) is
bench/annotate.py.

The machine is shared: load averages are recorded before and after every timed run. CPU facts
come from selfprompt.hardware. Writes bench/results/serve.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
from figures import at_least, data_dir, spread

from selfprompt.evaluate.judge_cli import load_questions
from selfprompt.generate.servers import ManagedServer, ServerConfig
from selfprompt.hardware import machine_facts
from selfprompt.jsonl import write_json
from selfprompt.manifest import build_manifest

REPO = Path(__file__).resolve().parents[1]


def start_server(log: Path, max_batch: int, max_tokens: int) -> ManagedServer:
    """`selfprompt serve` on the default model, started, health-checked and later stopped by the same code the
    stages use (selfprompt.generate.servers); its log goes to `log`."""
    server = ServerConfig(
        preset="selfprompt",
        served_name="default",
        args=["--max-batch", str(max_batch), "--max-tokens", str(max_tokens)],
    )
    return ManagedServer(server, "default", log).start()


def stream_one(client: openai.OpenAI, model: str, question: str, max_tokens: int) -> tuple[str, int]:
    """One streamed greedy answer: its text and its completion tokens (from the usage chunk)."""
    text, tokens = [], 0
    for chunk in client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": question}],
        max_tokens=max_tokens,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    ):
        if chunk.choices:
            text.append(chunk.choices[0].delta.content or "")
        if chunk.usage:
            tokens = chunk.usage.completion_tokens
    return "".join(text), tokens


def timed(side: str, work) -> dict:
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    answers = work()
    seconds = time.perf_counter() - started
    tokens = sum(n for _, n in answers)
    return {
        "side": side,
        "seconds": round(seconds, 2),
        "completion_tokens": tokens,
        "tokens_per_second": round(tokens / seconds, 3),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg()[0],
        "texts": [t for t, _ in answers],
    }


def summary(runs: list[dict], key: str) -> dict:
    """Median, min, max and the relative spread (max - min) / median of one figure over the runs."""
    return spread([r[key] for r in runs])


def bench_streams(server: ManagedServer, args: argparse.Namespace) -> dict:
    client = openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=3600)
    model = server.served_model
    # Real open-ended questions (Vicuna bench, from the data mirror).
    questions = [q.question for q in load_questions("vicuna_bench", args.data_dir, limit=args.questions)]
    stream_one(client, model, "Warm-up: say hi.", 4)

    def one_client():
        return [stream_one(client, model, q, args.max_tokens) for q in questions]

    def many_clients():
        with ThreadPoolExecutor(args.clients) as pool:  # a client takes the next question when its stream ends
            return list(pool.map(lambda q: stream_one(client, model, q, args.max_tokens), questions))

    single, concurrent = [], []
    for r in range(args.rounds):
        order = [("1 client", one_client, single), (f"{args.clients} clients", many_clients, concurrent)]
        for side, work, runs in order if r % 2 == 0 else order[::-1]:
            runs.append(timed(side, work))
            print(f"round {r}: {side}: {runs[-1]['tokens_per_second']} tokens/s", flush=True)
    same = all(c["texts"] == s["texts"] for c, s in zip(concurrent, single))
    one, many = summary(single, "tokens_per_second"), summary(concurrent, "tokens_per_second")
    return {
        "clients": args.clients,
        "questions": len(questions),
        "max_tokens": args.max_tokens,
        "one_client_tokens_per_second": one,
        "concurrent_tokens_per_second": many,
        "speedup_median": round(many["median"] / one["median"], 3),
        "equal_outputs": {"condition": "greedy: concurrent answers == one-client answers, text for text", "held": same},
        "runs": [{k: v for k, v in run.items() if k != "texts"} for run in single + concurrent],
        "answers": single[0]["texts"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--clients",
        type=at_least(1),
        default=16,
        help="concurrent streaming clients",
    )
    parser.add_argument("--questions", type=at_least(1), default=50, help="first N Vicuna bench questions (<= 80)")
    parser.add_argument("--max-tokens", type=int, default=24)
    parser.add_argument("--rounds", type=at_least(1), default=3)
    parser.add_argument("--data-dir", default=str(data_dir()))
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "serve.json"))
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally below: never orphan the server

    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    server = start_server(work / "server.log", max_batch=args.clients, max_tokens=args.max_tokens)
    try:
        streams = bench_streams(server, args)
    finally:
        server.stop()

    result = {
        "benchmark": "selfprompt serve, hf backend, continuous batching (SmolLM2-135M-Instruct, fp32)",
        "streams": streams,
        "target": "aggregate tokens/s of the concurrent streaming clients >= 3x one client's",
        "target_met": streams["speedup_median"] >= 3.0,
        "machine": machine_facts(),
        "load_average_at_end": os.getloadavg(),
        "manifest": build_manifest(stage="bench-serve", config=vars(args), seed=0),
    }
    write_json(args.out, result)
    line = f"streams: {streams['speedup_median']}x ({streams['concurrent_tokens_per_second']['median']} vs "
    line += f"{streams['one_client_tokens_per_second']['median']} tokens/s)"
    print(f"{line} -> {args.out}")
    shutil.rmtree(work, ignore_errors=True)
    if not streams["equal_outputs"]["held"]:
        raise SystemExit(f"the concurrent answers differ from the one-client answers: see {args.out}")


if __name__ == "__main__":
    main()
