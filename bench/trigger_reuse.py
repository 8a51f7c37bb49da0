"""Benchmark: the eval trigger pass with and without reusing the first pass's KV cache (hf backend, CPU).

    .venv/bin/python bench/trigger_reuse.py [--items 16] [--max-tokens 64] [--rounds 3]

The first pass (plain condition, GSM8K first-N test items) runs once; then the trigger pass runs
`--rounds` times each way, interleaved, the order alternating: reusing the held KV cache (what the hf
backend does) and encoding prompt + output + trigger again (what it did before). The outputs must be
identical (checked); the figure is the median wall time of the trigger pass, with min and max, and the
1-minute load average at the start and end of each run. Writes bench/results/trigger_reuse.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

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
    parser.add_argument("--items", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=64, help="the first pass's answer length")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    data_dir = os.environ.get("SELFPROMPT_DATA_DIR", str(REPO.parent / "shared" / "data"))
    spec = get_tasks(["gsm8k"], [])[0]
    items = select_items(load_items(spec, data_dir), args.items, None)
    config = EvalConfig(tasks=["gsm8k"], conditions=["plain"], max_tokens=args.max_tokens, seed=None)
    backend = get_backend("hf", model="default", batch_size=args.items, device="cpu")
    outputs = get_condition("plain").answer(backend, [i.question for i in items], sampling_for(config))
    held = list(backend._held)  # the first pass's KV cache, as the trigger pass finds it
    requests = [trigger_request(o, spec.trigger, trigger_sampling(config)) for o in outputs]
    runs: dict[str, list[dict]] = {"reuse": [], "encode_again": []}
    texts: dict[str, list[str]] = {}
    for round_ in range(args.rounds):
        for name in ["reuse", "encode_again"] if round_ % 2 == 0 else ["encode_again", "reuse"]:
            backend._held = list(held) if name == "reuse" else []
            load = os.getloadavg()[0]
            started = time.perf_counter()
            responses = backend.generate(requests)
            runs[name].append(
                {"seconds": time.perf_counter() - started, "load_average_1min": [load, os.getloadavg()[0]]}
            )
            texts.setdefault(name, [r.text for r in responses])
            assert [r.text for r in responses] == texts[name]
    summary = {
        name: {
            "seconds": statistics.median(r["seconds"] for r in rs),
            "seconds_min_max": [min(r["seconds"] for r in rs), max(r["seconds"] for r in rs)],
        }
        for name, rs in runs.items()
    }
    result = {
        "benchmark": "eval trigger pass, GSM8K first-N items, plain condition, default model, hf fp32 CPU, greedy",
        "config": {**vars(args), "trigger_max_tokens": config.trigger_max_tokens, "batch_size": backend.batch_size},
        "machine": machine_facts(),
        "summary": summary,
        "speedup_median": summary["encode_again"]["seconds"] / summary["reuse"]["seconds"],
        "identical_outputs": texts["reuse"] == texts["encode_again"],
        "prompt_tokens_per_item": statistics.mean(r.usage.prompt_tokens for r in responses),
        "runs": runs,
    }
    RESULT.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))


if __name__ == "__main__":
    main()
