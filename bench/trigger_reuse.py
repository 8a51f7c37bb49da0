"""Benchmark: the eval trigger pass with and without reusing the first pass's KV cache (hf backend, CPU).

    nice -n 19 .venv/bin/python bench/trigger_reuse.py [--items 50] [--max-tokens 64] [--rounds 3]

The first pass (plain condition, GSM8K first-N test items, all in one batch) runs once; then the trigger pass
runs `--rounds` times each way, interleaved, who goes first alternating: reusing the held KV cache (what the hf
backend does) and encoding prompt + output + trigger again (what it did before). Figures are medians of the
trigger pass's wall time over the rounds with min, max and (max - min) / median; the 1-minute load average is
recorded at the start and end of every run, the CPU facts once.

Equal-output condition: greedy, so both ways must give the same trigger answers, text for text, and every
round of a way the same as its first (checked and recorded; a difference fails the run after the result is
written). Writes bench/results/trigger_reuse.json unless --out says otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from figures import at_least, data_dir, medians

from selfprompt.evaluate.config import EvalConfig
from selfprompt.evaluate.generation import sampling_for, trigger_request, trigger_sampling
from selfprompt.evaluate.runner import load_items, select_items
from selfprompt.evaluate.tasks import get_tasks
from selfprompt.generate.backends import get_backend
from selfprompt.generate.conditions import get_condition
from selfprompt.hardware import machine_facts

REPO = Path(__file__).resolve().parents[1]
RESULT = REPO / "bench" / "results" / "trigger_reuse.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=at_least(1), default=50)
    parser.add_argument("--max-tokens", type=int, default=64, help="the first pass's answer length")
    parser.add_argument("--rounds", type=at_least(1), default=3)
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()
    spec = get_tasks(["gsm8k"], [])[0]
    items = select_items(load_items(spec, data_dir()), args.items, None)
    config = EvalConfig(tasks=["gsm8k"], conditions=["plain"], max_tokens=args.max_tokens, seed=None)
    backend = get_backend("hf", model="default", batch_size=args.items, device="cpu")
    outputs = get_condition("plain").answer(backend, [i.question for i in items], sampling_for(config))
    held = list(backend._held)  # the first pass's KV cache, as the trigger pass finds it
    requests = [trigger_request(o, spec.trigger, trigger_sampling(config)) for o in outputs]
    runs: dict[str, list[dict]] = {"reuse": [], "encode_again": []}
    texts: dict[str, list[str]] = {}
    stable = True  # every round of a way gives that way's first texts
    for round_ in range(args.rounds):
        for name in ["reuse", "encode_again"] if round_ % 2 == 0 else ["encode_again", "reuse"]:
            backend._held = list(held) if name == "reuse" else []
            load = os.getloadavg()[0]
            started = time.perf_counter()
            responses = backend.generate(requests)
            runs[name].append(
                {"seconds": time.perf_counter() - started, "load_average_1min": [load, os.getloadavg()[0]]}
            )
            stable &= [r.text for r in responses] == texts.setdefault(name, [r.text for r in responses])
    summary = {name: medians(rs, ("seconds",)) for name, rs in runs.items()}
    identical = stable and texts["reuse"] == texts["encode_again"]
    result = {
        "benchmark": "eval trigger pass, GSM8K first-N items, plain condition, default model, hf fp32 CPU, greedy",
        "command": "python bench/trigger_reuse.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
        "config": {**vars(args), "trigger_max_tokens": config.trigger_max_tokens, "batch_size": backend.batch_size},
        "machine": machine_facts(),
        "summary": summary,
        "speedup_median": summary["encode_again"]["seconds"] / summary["reuse"]["seconds"],
        "equal_outputs": {
            "condition": "greedy: the trigger answers with reuse == encoded again, text for text, every round",
            "held": identical,
        },
        "prompt_tokens_per_item": statistics.mean(r.usage.prompt_tokens for r in responses),
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2, default=str))
    if not identical:
        raise SystemExit(f"the trigger answers differ between the two ways or between rounds: see {args.out}")


if __name__ == "__main__":
    main()
