"""Generation throughput on the default model: hf batch 1, hf batched, llama.cpp in-process.

All three run in one process, one after the other, on the same prompts with the same greedy
sampling and max_tokens. Throughput is generated tokens (as each backend reports them) per wall
second, prompt processing included. Writes bench/results/generate.json with the figures and ratios.

    .venv/bin/python bench/generate.py [--prompts 8] [--max-tokens 48] [--batch 8]

The machine may be shared: the load average before and after each run is recorded beside it.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

from selfprompt.generate.backends import ChatRequest, Sampling, get_backend
from selfprompt.hardware import machine_facts
from selfprompt.jsonl import write_json
from selfprompt.manifest import git_commit, package_versions
from selfprompt.models import resolve_model
from selfprompt.records import Message

RESULT = Path(__file__).resolve().parent / "results" / "generate.json"
# Open-ended prompts with long answers, so every run generates close to max_tokens.
PROMPTS = [
    "Write a poem about the sea.",
    "Explain in detail how a car engine works.",
    "Tell me a story about a dragon.",
    "Describe the history of the Roman Empire.",
    "How do I bake sourdough bread? Give every step.",
    "Explain photosynthesis to a ten-year-old.",
    "Write a letter to a friend about your holiday.",
    "What are the pros and cons of electric cars?",
    "Describe how the internet works.",
    "Give ten tips for learning a new language.",
    "Explain how vaccines train the immune system.",
    "Write a short essay on the importance of sleep.",
]


def timed(backend, requests, batch: int) -> dict:
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    responses = []
    for i in range(0, len(requests), batch):
        responses += backend.generate(requests[i : i + batch])
    seconds = time.perf_counter() - started
    tokens = sum(r.usage.completion_tokens for r in responses)
    return {
        "tokens": tokens,
        "seconds": round(seconds, 3),
        "tokens_per_s": round(tokens / seconds, 2),
        "requests": len(requests),
        "batch": batch,
        "loadavg_1m": [load_before, os.getloadavg()[0]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()
    sampling = Sampling(max_tokens=args.max_tokens, temperature=0.0)
    requests = [
        ChatRequest(messages=[Message(role="user", content=p)], sampling=sampling)
        for p in (PROMPTS * 4)[: args.prompts]
    ]
    model = resolve_model("default")

    results = {}
    hf = get_backend("hf", model=model, batch_size=args.batch)
    hf.generate(requests[:1])  # warm-up: first call pays one-off costs
    results["hf_batch1"] = timed(hf, requests, batch=1)
    results[f"hf_batch{args.batch}"] = timed(hf, requests, batch=args.batch)
    hf.close()
    del hf
    llama = get_backend("llamacpp", model=model)
    llama.generate(requests[:1])
    results["llamacpp"] = timed(llama, requests, batch=1)
    llama.close()

    batched = results[f"hf_batch{args.batch}"]["tokens_per_s"]
    single = results["hf_batch1"]["tokens_per_s"]
    ours = results["llamacpp"]["tokens_per_s"]
    report = {
        "benchmark": "generate",
        "model": model.name,
        "config": {"prompts": args.prompts, "max_tokens": args.max_tokens, "batch": args.batch, "greedy": True},
        "results": results,
        "ratios": {
            f"hf_batch{args.batch}_over_hf_batch1": round(batched / single, 3),
            "llamacpp_over_hf_batch1": round(ours / single, 3),
            f"llamacpp_over_hf_batch{args.batch}": round(ours / batched, 3),
        },
        "machine": {"platform": platform.platform(), **machine_facts()},
        "versions": package_versions(),
        "git_commit": git_commit(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_json(args.out, report)
    print(f"hf batch 1: {single} tok/s; hf batch {args.batch}: {batched} tok/s; llamacpp: {ours} tok/s -> {args.out}")


if __name__ == "__main__":
    main()
