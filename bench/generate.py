"""Benchmark: generation tokens/s on the default model: hf batch 1, hf batched, llama.cpp in-process.

    nice -n 19 .venv/bin/python bench/generate.py [--prompts 50] [--max-tokens 48] [--batch auto] [--rounds 3]

All three sides run in one process on the same prompts (the first `--prompts` Vicuna bench questions from
the data mirror: open-ended, so every reply runs close to max_tokens) with the same greedy sampling and
max_tokens:
  hf_batch1  transformers (fp32, CPU), one request per call;
  hf_batched transformers, all requests in one call: the backend sorts them by length and batches
             `--batch` rows at a time (auto: chosen from memory and the model, recorded);
  llamacpp   llama.cpp in-process on the GGUF file (Q4_1), which answers one request at a time.
Throughput is completion tokens (as each backend reports them) per wall second, prompt processing included.
One untimed warm-up request per backend, then `--rounds` rounds; each round runs the three sides one after
the other, the order rotating so that each side goes first in turn. Before each hf run the backend's held KV
cache is dropped, so no run reuses the prompt encoding of the one before. Figures are medians over the rounds
with min, max and (max - min) / median; the 1-minute load average is recorded before and after every run,
the CPU facts once.

Equal-output condition: greedy, so hf batch 1 and hf batched must give the same texts (checked, recorded
per round). llama.cpp runs a different (quantized) build of the model: its agreement is only recorded.

Writes bench/results/generate.json unless --out says otherwise.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from figures import at_least, data_dir, medians

from selfprompt.evaluate.judge_cli import load_questions
from selfprompt.generate.backends import ChatRequest, Sampling, get_backend
from selfprompt.hardware import machine_facts
from selfprompt.jsonl import write_json
from selfprompt.manifest import git_commit, package_versions
from selfprompt.models import resolve_model
from selfprompt.records import Message

REPO = Path(__file__).resolve().parents[1]
RESULT = REPO / "bench" / "results" / "generate.json"
TIMINGS = ("seconds", "tokens_per_s")


def timed(backend, requests: list[ChatRequest], per_call: int) -> dict:
    """Generate `requests`, `per_call` to a generate call; the texts, tokens/s and load average around it."""
    if hasattr(backend, "_held"):
        backend._held = []  # the hf backend reuses the previous call's KV cache: each run starts without one
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    responses = []
    for i in range(0, len(requests), per_call):
        responses += backend.generate(requests[i : i + per_call])
    seconds = time.perf_counter() - started
    tokens = sum(r.usage.completion_tokens for r in responses)
    return {
        "tokens": tokens,
        "seconds": seconds,
        "tokens_per_s": tokens / seconds,
        "requests": len(requests),
        "requests_per_call": per_call,
        "load_average_1min": [load_before, os.getloadavg()[0]],
        "texts": [r.text for r in responses],
    }


def summary(runs: list[dict]) -> dict:
    """Medians of the timings over the runs, with [min, max] and the relative spread ((max - min) / median)."""
    out = {k: runs[0][k] for k in ("tokens", "requests", "requests_per_call")}
    out.update(medians(runs, TIMINGS))
    out["tokens_runs"] = [r["tokens"] for r in runs]
    out["load_average_1min"] = [r["load_average_1min"] for r in runs]
    out["rounds"] = len(runs)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=at_least(1), default=50, help="first N Vicuna bench questions (at most 80)")
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--batch", default="auto", help="hf batched: rows per batch, or auto (chosen from memory)")
    parser.add_argument("--rounds", type=at_least(1), default=3)
    parser.add_argument("--data-dir", default=str(data_dir()))
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()
    sampling = Sampling(max_tokens=args.max_tokens, temperature=0.0)
    questions = [q.question for q in load_questions("vicuna_bench", args.data_dir, limit=args.prompts)]
    if len(questions) < args.prompts:
        raise SystemExit(f"--prompts {args.prompts}: the Vicuna bench file has only {len(questions)} questions")
    requests = [ChatRequest(messages=[Message(role="user", content=q)], sampling=sampling) for q in questions]
    model = resolve_model("default")

    hf = get_backend("hf", model=model, batch_size=None if args.batch == "auto" else int(args.batch), device="cpu")
    llama = get_backend("llamacpp", model=model)
    hf.generate(requests[:1])  # untimed warm-up: the first call pays one-off costs
    llama.generate(requests[:1])
    sides = {
        "hf_batch1": lambda: timed(hf, requests, per_call=1),
        "hf_batched": lambda: timed(hf, requests, per_call=len(requests)),
        "llamacpp": lambda: timed(llama, requests, per_call=1),
    }
    names = list(sides)
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for round_ in range(args.rounds):
        for name in names[round_ % 3 :] + names[: round_ % 3]:  # each side goes first in turn
            runs[name].append(sides[name]())
            print(f"round {round_}: {name}: {runs[name][-1]['tokens_per_s']:.2f} tokens/s", flush=True)
    batch_decision = hf.decisions["batch_size"]
    hf.close()
    llama.close()

    # Greedy: hf batched must repeat hf batch 1 text for text, round by round.
    same_hf = [b["texts"] == s["texts"] for b, s in zip(runs["hf_batched"], runs["hf_batch1"])]
    reference = runs["hf_batch1"][0]["texts"]
    same_llama = sum(a == b for a, b in zip(runs["llamacpp"][0]["texts"], reference))
    results = {name: summary(rs) for name, rs in runs.items()}
    single, batched, llamacpp = (results[n]["tokens_per_s"] for n in names)
    report = {
        "benchmark": "generate tokens/s, default model, Vicuna bench questions, greedy: hf batch 1 vs hf batched "
        "vs llama.cpp in-process",
        "command": "python bench/generate.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "data_dir"),
        "model": model.name,
        "config": {
            "prompts": args.prompts,
            "max_tokens": args.max_tokens,
            "batch": args.batch,
            "batch_resolved": batch_decision["resolved"],
            "batch_decision": batch_decision,
            "rounds": args.rounds,
            "greedy": True,
        },
        "machine": machine_facts(),
        "results": results,
        "ratios": {
            "hf_batched_over_hf_batch1": batched / single,
            "llamacpp_over_hf_batch1": llamacpp / single,
            "llamacpp_over_hf_batched": llamacpp / batched,
        },
        "equal_outputs": {
            "condition": "greedy: hf batched texts == hf batch 1 texts, every round (llama.cpp runs a quantized "
            "build: its agreement with hf batch 1 is recorded, not required)",
            "held": all(same_hf),
            "hf_batched_equal_per_round": same_hf,
            "llamacpp_texts_equal_to_hf_batch1": f"{same_llama}/{len(reference)}",
        },
        "texts_hf_batch1": reference,
        "runs": {name: [{k: v for k, v in r.items() if k != "texts"} for r in rs] for name, rs in runs.items()},
        "note": "Medians over the rounds ([min, max] and (max - min) / median beside them); ratios are of medians. "
        "On a shared machine the figures swing with its load (load_average_1min: before, after each run); "
        "llama.cpp's spinning threads suffer most from oversubscription.",
        "versions": package_versions(),
        "git_commit": git_commit(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_json(args.out, report)
    print(
        f"hf batch 1: {single:.2f} tok/s; hf batched ({batch_decision['resolved']}): {batched:.2f} tok/s; "
        f"llamacpp: {llamacpp:.2f} tok/s; hf batched == batch 1: {all(same_hf)} -> {args.out}"
    )
    if not all(same_hf):
        raise SystemExit(f"hf batched answers differ from hf batch 1: see {args.out}")


if __name__ == "__main__":
    main()
