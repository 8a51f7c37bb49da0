"""Annotate throughput against llama.cpp's OpenAI-compatible server (default model), in one run:

  1. concurrency 1, empty cache
  2. concurrency 8, empty cache (same rows, new output)
  3. concurrency 8, fully cached rerun (new output, the cache of run 2)

Runs 1 and 2 alternate for --rounds rounds (fresh caches each time), so a load swing on a shared
machine hits both; the figures are per-round and the median. Writes rows/s of each, their ratio,
and the cached rerun's time to bench/results/annotate.json.
llama-cpp-python's server answers one request at a time, so concurrency mostly hides client and
HTTP overhead here; against vLLM or a hosted API it is where the throughput comes from.

    .venv/bin/python bench/annotate.py [--rows 8] [--rounds 2] [--max-tokens 48]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
from pathlib import Path

from selfprompt.annotate.run import AnnotateConfig, run_annotate
from selfprompt.annotate.template import load_template
from selfprompt.generate.backends import ChatRequest, Sampling, get_backend
from selfprompt.generate.servers import ManagedServer, ServerConfig
from selfprompt.jsonl import write_json
from selfprompt.manifest import build_manifest

REPO = Path(__file__).resolve().parents[1]


def start_server(log: Path) -> ManagedServer:
    """llama.cpp's server on the default model, named 'default', on a free loopback port (stop() it)."""
    return ManagedServer(ServerConfig(preset="llamacpp", served_name="default"), "default", log).start()


def timed_run(cfg: AnnotateConfig) -> dict:
    summary = run_annotate(cfg, show_progress=False)
    run = summary["this_run"]
    return {
        "concurrency": cfg.concurrency,
        "rows": summary["rows"],
        "seconds": run["seconds"],
        "rows_per_second": run["rows_per_second"],
        "requests_sent": run["requests_sent"],
        "cache_hits": run["cache_hits"],
        "status": summary["status"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--warmup-requests", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument(
        "--data-dir", default=os.environ.get("SELFPROMPT_DATA_DIR", str(REPO.parent / "shared" / "data"))
    )
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "annotate.json"))
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally below: never orphan the server

    work = Path(tempfile.mkdtemp(prefix="bench-annotate-"))
    server = start_server(work / "server.log")
    base_url = server.base_url
    try:
        # Warm-up: the server's first requests pay for evaluating the few-shot prefix and for paging the
        # model in (measured here: the first generations ran at <1 token/s, later ones 10x faster).
        warm = get_backend("openai", model="default", base_url=base_url, api_key_env="SELFPROMPT_BENCH_NO_KEY")
        warm.generate(
            [
                ChatRequest(
                    messages=load_template().messages(f"Warm-up question {i}?"),
                    sampling=Sampling(max_tokens=args.max_tokens),
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
                base_url=base_url,
                api_key_env="SELFPROMPT_BENCH_NO_KEY",
                concurrency=concurrency,
                max_tokens=args.max_tokens,
                max_attempts=1,
            )

        serial_runs, parallel_runs = [], []
        for r in range(args.rounds):
            first, second = (
                ((1, serial_runs), (8, parallel_runs)) if r % 2 == 0 else ((8, parallel_runs), (1, serial_runs))
            )
            for concurrency, runs in (first, second):
                runs.append(timed_run(cfg(f"c{concurrency}-r{r}", concurrency, f"c{concurrency}-r{r}.sqlite")))
                runs[-1]["load_average_after"] = os.getloadavg()[0]
        cached = timed_run(cfg("cached", 8, f"c8-r{args.rounds - 1}.sqlite"))
    finally:
        server.stop()

    serial = statistics.median(r["rows_per_second"] for r in serial_runs)
    parallel = statistics.median(r["rows_per_second"] for r in parallel_runs)
    result = {
        "benchmark": "annotate rows/s, llama.cpp server (SmolLM2-135M Q4_1), 2-core CPU",
        "rows": args.rows,
        "max_tokens": args.max_tokens,
        "concurrency_1": {"median_rows_per_second": serial, "runs": serial_runs},
        "concurrency_8": {"median_rows_per_second": parallel, "runs": parallel_runs},
        "cached_rerun": cached,
        "speedup_concurrency_8_vs_1": round(parallel / serial, 3),
        "speedup_cached_rerun_vs_concurrency_8": round(
            statistics.median(r["seconds"] for r in parallel_runs) / max(cached["seconds"], 1e-9), 1
        ),
        "note": "llama-cpp-python's server answers one request at a time; the machine is shared, see load averages",
        "load_average_at_end": os.getloadavg(),
        "manifest": build_manifest(stage="bench-annotate", config=vars(args), seed=0),
    }
    write_json(args.out, result)
    print(
        f"c=1 {serial} rows/s, c=8 {parallel} rows/s (medians), "
        f"cached rerun {cached['seconds']} s ({cached['requests_sent']} requests) -> {args.out}"
    )


if __name__ == "__main__":
    main()
