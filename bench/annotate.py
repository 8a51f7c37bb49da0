"""Benchmark: annotation rows/s at concurrency 1 vs 8 through an OpenAI-compatible server on the default model.

    nice -n 19 .venv/bin/python bench/annotate.py [--server selfprompt|llamacpp] [--rows 20] [--rounds 3] \
        [--max-tokens N] [--out PATH]

The server (`selfprompt serve`, continuous batching, or llama.cpp's, which answers one request at a time) is
started, health-checked and stopped by the code the stages use (selfprompt.generate.servers); `selfprompt serve`
gets `--max-batch` >= the highest concurrency, so that 8 requests can be decoded together. Then:

  1. a few untimed warm-up requests (a fresh server's first generations are several times slower);
  2. `--rounds` rounds, each running `selfprompt annotate --backend openai` on the first `--rows` LIMA rows at
     concurrency 1 and at concurrency 8, who goes first alternating, each run on a fresh output and cache;
  3. a rerun at concurrency 8 on the filled cache of the last concurrency-8 run (new output): it must send
     0 requests (recorded and checked).

Every run uses the annotation template's sampling (temperature 0.7, seed 0, stop at a blank line) and its
max_tokens (200) unless `--max-tokens` overrides it. Figures are medians over the rounds with min, max and
(max - min) / median; the 1-minute load average is recorded before and after every run, the CPU facts once.
Sampled replies differ in length from run to run, so beside rows/s (the target) each run's completion tokens/s
(the server's usage) and its ratio are recorded: the same comparison per unit of work.

Equal-accuracy condition: the template samples, so the texts differ between runs and between concurrencies
(a batch is one random stream); what must hold is that every run annotates every row: one output row per input
row and no request failed (status 'error' 0). The status counts and the ok share are recorded per run.

Target: concurrency 8 >= 3x concurrency 1 rows/s (medians). Writes bench/results/annotate.json
(bench/results/annotate-llamacpp.json for --server llamacpp) unless --out says otherwise.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from figures import at_least, data_dir, spread

from selfprompt.annotate.run import AnnotateConfig, run_annotate
from selfprompt.annotate.template import load_template
from selfprompt.generate.backends import ChatRequest, Sampling, get_backend
from selfprompt.generate.servers import ManagedServer, ServerConfig
from selfprompt.hardware import machine_facts
from selfprompt.jsonl import write_json
from selfprompt.manifest import build_manifest

REPO = Path(__file__).resolve().parents[1]
RESULTS = {
    "selfprompt": REPO / "bench" / "results" / "annotate.json",
    "llamacpp": REPO / "bench" / "results" / "annotate-llamacpp.json",
}
CONCURRENCY = (1, 8)
TARGET_RATIO = 3.0


def start_server(preset: str, log: Path, max_tokens: int) -> ManagedServer:
    """The server on the default model, named 'default', on a free loopback port (stop() it)."""
    args = []
    if preset == "selfprompt":
        # --max-batch: the highest concurrency decodes together; --max-tokens sizes its KV cache per request.
        args = ["--max-batch", str(max(CONCURRENCY)), "--max-tokens", str(max_tokens)]
    return ManagedServer(ServerConfig(preset=preset, served_name="default", args=args), "default", log).start()


def timed_run(cfg: AnnotateConfig) -> dict:
    load_before = os.getloadavg()[0]
    summary = run_annotate(cfg, show_progress=False)
    run = summary["this_run"]
    status = summary["status"]
    return {
        "concurrency": cfg.concurrency,
        "rows": summary["rows"],
        "seconds": run["seconds"],
        "rows_per_second": run["rows_per_second"],
        # The texts are sampled, so runs generate different amounts: tokens/s is the same work measured per token.
        "completion_tokens": summary["usage"]["completion_tokens"],
        "completion_tokens_per_second": round(summary["usage"]["completion_tokens"] / run["seconds"], 3)
        if run["seconds"]
        else None,
        "requests_sent": run["requests_sent"],
        "cache_hits": run["cache_hits"],
        "status": status,
        "ok_share": status.get("ok", 0) / summary["rows"] if summary["rows"] else None,
        "load_average_1min": [load_before, os.getloadavg()[0]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", choices=list(RESULTS), default="selfprompt", help="the server annotated through")
    parser.add_argument(
        "--rows",
        type=at_least(max(CONCURRENCY)),
        default=20,
        help="first N LIMA rows, every run (>= 8, the top concurrency)",
    )
    parser.add_argument("--rounds", type=at_least(1), default=3)
    parser.add_argument("--warmup-requests", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=None, help="default: the annotation template's (200)")
    parser.add_argument("--data-dir", default=str(data_dir()))
    parser.add_argument("--out", type=Path, default=None, help="default: bench/results/annotate[-llamacpp].json")
    args = parser.parse_args()
    out = args.out or RESULTS[args.server]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally below: never orphan the server

    template = load_template()
    max_tokens = args.max_tokens or template.sampling.max_tokens
    work = Path(tempfile.mkdtemp(prefix="bench-annotate-"))
    server = start_server(args.server, work / "server.log", max_tokens)
    try:
        warm = get_backend("openai", model="default", base_url=server.base_url, api_key_env="SELFPROMPT_BENCH_NO_KEY")
        warm.generate(
            [
                ChatRequest(
                    messages=template.messages(f"Warm-up question {i}?"), sampling=Sampling(max_tokens=max_tokens)
                )
                for i in range(args.warmup_requests)
            ]
        )
        warm.close()

        def cfg(name: str, concurrency: int, cache: str) -> AnnotateConfig:
            return AnnotateConfig(
                out=work / f"{name}.jsonl",
                cache=work / cache,
                data="lima",
                data_dir=args.data_dir,
                limit=args.rows,
                teacher="default",
                backend="openai",
                base_url=server.base_url,
                api_key_env="SELFPROMPT_BENCH_NO_KEY",
                concurrency=concurrency,
                max_tokens=args.max_tokens,  # None: the template's
                max_attempts=1,
            )

        runs: dict[int, list[dict]] = {c: [] for c in CONCURRENCY}
        for r in range(args.rounds):
            for c in CONCURRENCY if r % 2 == 0 else CONCURRENCY[::-1]:  # who goes first alternates
                runs[c].append(timed_run(cfg(f"c{c}-r{r}", c, f"c{c}-r{r}.sqlite")))
                failed = runs[c][-1]["status"].get("error", 0)
                if failed:  # a figure from failed requests would be no figure: stop before writing any
                    raise SystemExit(
                        f"round {r}, c={c}: {failed} requests failed; the server's log: {work / 'server.log'}"
                    )
                print(f"round {r}: c={c}: {runs[c][-1]['rows_per_second']} rows/s", flush=True)
        top = max(CONCURRENCY)
        cached = timed_run(cfg("cached", top, f"c{top}-r{args.rounds - 1}.sqlite"))
    finally:
        server.stop()

    per_concurrency = {
        f"concurrency_{c}": {
            "rows_per_second": spread([r["rows_per_second"] for r in rs]),
            "seconds": spread([r["seconds"] for r in rs]),
            "completion_tokens_per_second": spread([r["completion_tokens_per_second"] for r in rs]),
            "ok_share": [r["ok_share"] for r in rs],
        }
        for c, rs in runs.items()
    }
    medians = {c: per_concurrency[f"concurrency_{c}"]["rows_per_second"]["median"] for c in CONCURRENCY}
    ratio = medians[top] / medians[1]
    tokens = {c: per_concurrency[f"concurrency_{c}"]["completion_tokens_per_second"]["median"] for c in CONCURRENCY}
    every_row = all(r["rows"] == args.rows and r["status"].get("error", 0) == 0 for rs in runs.values() for r in rs)
    result = {
        "benchmark": f"annotate rows/s through {args.server} server, default model (SmolLM2-135M-Instruct), "
        f"concurrency 1 vs {top}",
        "command": "python bench/annotate.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None and k != "data_dir"),
        "config": {
            "server": args.server,
            "server_args": server.server.args,
            "rows": args.rows,
            "rounds": args.rounds,
            "max_tokens": max_tokens,
            "template": f"{template.name}-v{template.version}",
            "sampling": {**template.sampling.model_dump(), "max_tokens": max_tokens, "seed": 0},
            "warmup_requests": args.warmup_requests,
        },
        "machine": machine_facts(),
        **per_concurrency,
        f"ratio_rows_per_second_c{top}_over_c1": ratio,
        f"ratio_completion_tokens_per_second_c{top}_over_c1": tokens[top] / tokens[1],
        "target": f"concurrency {top} >= {TARGET_RATIO}x concurrency 1 rows/s (medians)",
        "target_met": ratio >= TARGET_RATIO,
        "equal_accuracy": {
            "condition": "sampling (temperature 0.7, seed 0): texts differ between runs, so every run must annotate "
            f"every row: {args.rows} output rows, none with status 'error'; status counts and ok share per run",
            "held": every_row,
            "ok_share": {k: v["ok_share"] for k, v in per_concurrency.items()},
        },
        "cached_rerun": {
            **{k: v for k, v in cached.items() if not k.startswith("completion_tokens")},  # nothing generated
            "condition": "a rerun on the filled cache sends 0 requests",
            "held": cached["requests_sent"] == 0,
        },
        "runs": runs,
        "note": "Medians over the rounds ([min, max] and (max - min) / median beside them); the ratio is of medians. "
        "On a shared machine the figures swing with its load (load_average_1min: before, after each run).",
        "manifest": build_manifest(stage="bench-annotate", config=vars(args), seed=0),
    }
    write_json(out, result)
    print(
        f"c=1 {medians[1]} rows/s, c={top} {medians[top]} rows/s (medians), "
        f"{ratio:.2f}x (target {TARGET_RATIO}x: {'met' if result['target_met'] else 'not met'}; completion tokens/s "
        f"{tokens[top] / tokens[1]:.2f}x); "
        f"every row annotated: {every_row}; cached rerun {cached['requests_sent']} requests -> {out}"
    )
    if not (every_row and cached["requests_sent"] == 0):
        raise SystemExit("a check failed: see equal_accuracy and cached_rerun in " + str(out))
    shutil.rmtree(work, ignore_errors=True)  # kept only when something failed (it holds the server's log)


if __name__ == "__main__":
    main()
