"""Peak memory and seconds per optimizer step of the CPU recipe, before and after micro-batching, in one run.

    OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python bench/train.py --rows 8 --steps 1 --repeats 3 [--sides before,after]

(OMP_NUM_THREADS=1 on a shared machine: two OpenMP threads per process under contention spin and
make a step several times slower; on an idle machine leave it unset.)

Sides (each the CPU recipe, recipes/smollm2-135m-lora-cpu.yaml, with these overrides):
  before         per_device_batch_size=8 gradient_accumulation_steps=1: one padded batch of 8 (the recipe until
                 it micro-batched; the demo's training stage peaked at 8 GB resident with it)
  after          the recipe as shipped: 8 micro-batches of 1, accumulated; the same 8 rows per optimizer step
  micro2         per_device_batch_size=2 gradient_accumulation_steps=4 (for comparison)
  checkpointing  the recipe plus gradient_checkpointing=true (for comparison)
  after-bf16     the recipe in bf16 autocast (what precision: auto picks on a CPU with native bf16)

Same model (the embedded default, fp32 unless the side says otherwise), same rows: the
longest LIMA rows with templated role prompts that fit `--max-length` tokens, so every optimizer step
carries about 8 x max_length tokens, as the demo's longest batches do. Each run is a fresh process
(peak RSS is per process), run at lowest priority; sides run interleaved, `--repeats` times, the order
rotating each repeat so that each side goes first in turn (before, after; after, before; ...), so a drift in
the machine's load touches each side alike. Peak memory is the run's maximum resident
set, the training process and any children it waited for, from wait4(2).

Equal-work condition (checked): every side trains the same rows for the same number of optimizer steps,
and its per-step losses equal the first side's within 1e-3 relative (the loss is the mean over the
step's assistant tokens whatever the micro-batch). Writes bench/results/train.json: every run, the median,
min-max and relative spread ((max - min) / median) per side, the ratios to before, CPU facts, and the 1-minute
load average before and after every run (and the 1/5/15-minute ones at the start and after the latest run).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from figures import at_least, data_dir, spread

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "smollm2-135m-lora-cpu.yaml"
RESULT = REPO / "bench" / "results" / "train.json"
SIDES = {
    "before": ["per_device_batch_size=8", "gradient_accumulation_steps=1"],
    "after": [],
    "micro2": ["per_device_batch_size=2", "gradient_accumulation_steps=4"],
    "checkpointing": ["gradient_checkpointing=true"],
    "after-bf16": ["precision=bf16"],  # what `precision: auto` picks where bf16 is native
}
LOSS_RTOL = 1e-3


def role_file(rows: int, max_length: int, folder: Path) -> Path:
    """The `rows` longest template-role LIMA rows that the recipe keeps at `max_length`, in file order."""
    from selfprompt.format import get_format
    from selfprompt.jsonl import write_records
    from selfprompt.train.config import load_config
    from selfprompt.train.data import order_rows, prepare_examples
    from selfprompt.train.recipe import setup_tokenizer
    from selfprompt.train.template_roles import lima_template_roles

    candidates = order_rows(lima_template_roles(data_dir() / "lima" / "train.jsonl"), "shortest")
    cfg = load_config(RECIPE, ["data=unused", "output_dir=unused"])
    _, tokenizer, pair = setup_tokenizer(cfg)
    # Rows are ordered by characters; tokenize a window wide enough to find `rows` that fit in tokens.
    prepared = prepare_examples(
        candidates[: 40 * rows],
        tokenizer,
        pair.training,
        mode=cfg.mode,
        fmt=get_format(cfg.format),
        system_prompt=cfg.system_prompt,
        max_length=max_length,
        include_statuses=cfg.include_statuses,
    )
    longest = {e.id for e in sorted(prepared.examples, key=lambda e: len(e.input_ids))[-rows:]}
    path = folder / "lima-role.jsonl"
    write_records(path, [r for r in candidates if r.id in longest])
    return path


def child(side: str, data: Path, out: Path, rows: int, max_length: int, steps: int) -> None:
    from selfprompt.train.config import load_config
    from selfprompt.train.recipe import run

    overrides = [
        f"data={data}",
        f"output_dir={out}",
        f"max_rows={rows}",
        f"max_length={max_length}",
        "row_order=file",
        f"max_steps={steps}",
        "save_steps=100000",
        "precision=fp32",
        *SIDES[side],
    ]
    cfg = load_config(RECIPE, overrides)
    result = run(cfg)
    examples = result.data.examples
    with (out / "loss.csv").open() as f:
        losses = [float(line.split(",")[2]) for line in f.read().splitlines()[1:]]
    print(
        "RESULT "
        + json.dumps(
            {
                "overrides": SIDES[side],
                "per_device_batch_size": cfg.per_device_batch_size,
                "gradient_accumulation_steps": cfg.gradient_accumulation_steps,
                "gradient_checkpointing": cfg.gradient_checkpointing,
                "steps": result.global_step,
                "rows": len(examples),
                "tokens_per_row": [len(e.input_ids) for e in examples],
                "seconds": result.train_seconds,
                "s_per_step": result.train_seconds / result.global_step,
                "cpu_s_per_step": result.train_cpu_seconds / result.global_step,
                "losses": losses,
                "self_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # Linux: KiB
            }
        ),
        flush=True,
    )


def run_side(side: str, data: Path, out: Path, args) -> dict:
    log = out.with_suffix(".log")
    cmd = [sys.executable, __file__, "--child", side, "--data", str(data), "--out", str(out)]
    cmd += ["--rows", str(args.rows), "--max-length", str(args.max_length), "--steps", str(args.steps)]
    load_before = os.getloadavg()[0]
    with log.open("w") as f:
        proc = subprocess.Popen(["nice", "-n", "19", *cmd], stdout=f, stderr=subprocess.STDOUT)
    # wait4 gives this child's own peak RSS (with its reaped children), unlike RUSAGE_CHILDREN's max over all runs
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    except BaseException:  # SIGTERM (see main) or Ctrl-C: never leave a training child behind
        proc.kill()
        proc.wait()
        raise
    proc.returncode = os.waitstatus_to_exitcode(status)
    text = log.read_text()
    line = next((ln for ln in text.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"{side} failed (exit {proc.returncode}):\n{text[-3000:]}")
    result = json.loads(line[len("RESULT ") :])
    result["peak_rss_mb"] = usage.ru_maxrss / 1024
    result["load_average_1min"] = [load_before, os.getloadavg()[0]]
    return result


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: run_side kills its child, temp folders go
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=16, help="rows trained (16 = 2 optimizer steps of 8)")
    parser.add_argument("--max-length", type=int, default=320, help="the demo's max_length")
    parser.add_argument("--steps", type=int, default=2, help="optimizer steps per run")
    parser.add_argument("--repeats", type=at_least(1), default=3)
    parser.add_argument("--sides", default="before,after", help=f"comma-separated, from {list(SIDES)}")
    parser.add_argument("--result", type=Path, default=RESULT, help="where the JSON goes")
    parser.add_argument("--child", choices=list(SIDES))
    parser.add_argument("--data")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.child:
        child(args.child, Path(args.data), Path(args.out), args.rows, args.max_length, args.steps)
        return

    sides = [s for s in args.sides.split(",") if s]
    if not sides:
        raise SystemExit(f"--sides names none; valid: {list(SIDES)}")
    unknown = [s for s in sides if s not in SIDES]
    if unknown:
        raise SystemExit(f"unknown side(s) {unknown}; valid: {list(SIDES)}")
    runs: dict[str, list[dict]] = {s: [] for s in sides}
    load = {"at_start": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        data = role_file(args.rows, args.max_length, Path(tmp))
        for repeat in range(args.repeats):
            order = sides[repeat % len(sides) :] + sides[: repeat % len(sides)]  # each side goes first in turn
            for side in order:
                r = run_side(side, data, Path(tmp) / f"{side}-{repeat}", args)
                runs[side].append(r)
                print(
                    f"{side} #{repeat + 1}: {r['s_per_step']:.1f} s/step ({r['cpu_s_per_step']:.1f} CPU s), "
                    f"peak {r['peak_rss_mb']:.0f} MB",
                    file=sys.stderr,
                )
                load["latest"] = os.getloadavg()
                # written after every run, so that a run cut short still leaves what it measured
                report = build_report(args, sides, runs, load, done=repeat + 1 == args.repeats and side == order[-1])
                args.result.parent.mkdir(parents=True, exist_ok=True)
                args.result.write_text(json.dumps(report, indent=2) + "\n")
    summary = report["sides"]
    print(
        json.dumps(
            {
                "sides": {s: {k: v["median"] for k, v in summary[s].items() if isinstance(v, dict)} for s in summary},
                "ratios": report["ratios"],
            },
            indent=2,
        )
    )


def build_report(args, sides: list[str], runs: dict[str, list[dict]], load: dict, done: bool) -> dict:
    from selfprompt.hardware import machine_facts

    first = runs[sides[0]][0]
    for side, rs in runs.items():
        for r in rs:
            assert r["steps"] == first["steps"] and r["rows"] == first["rows"], f"{side} did different work: {r}"
            for a, b in zip(r["losses"], first["losses"], strict=True):
                assert abs(a - b) <= LOSS_RTOL * abs(b), f"{side} losses {r['losses']} != {first['losses']}"
    summary = {
        side: {
            "overrides": rs[0]["overrides"],
            "per_device_batch_size": rs[0]["per_device_batch_size"],
            "gradient_accumulation_steps": rs[0]["gradient_accumulation_steps"],
            "gradient_checkpointing": rs[0]["gradient_checkpointing"],
            "s_per_step": spread([r["s_per_step"] for r in rs]),
            "cpu_s_per_step": spread([r["cpu_s_per_step"] for r in rs]),
            "peak_rss_mb": spread([r["peak_rss_mb"] for r in rs]),
            "losses": [r["losses"] for r in rs],
            "load_average_1min": [r["load_average_1min"] for r in rs],
        }
        for side, rs in runs.items()
        if rs
    }
    ratios = {}
    if "before" in runs:
        for side in sides:
            if side != "before":
                pairs = list(zip(runs["before"], runs[side]))
                if not pairs:
                    continue
                ratios[f"{side}_over_before"] = {
                    "s_per_step": spread([b["s_per_step"] / a["s_per_step"] for a, b in pairs]),
                    "cpu_s_per_step": spread([b["cpu_s_per_step"] / a["cpu_s_per_step"] for a, b in pairs]),
                    "peak_rss": spread([b["peak_rss_mb"] / a["peak_rss_mb"] for a, b in pairs]),
                }
    return {
        "benchmark": "train",
        "command": "python bench/train.py " + " ".join(sys.argv[1:]),
        "recipe": str(RECIPE.relative_to(REPO)),
        "model": "default (SmolLM2-135M-Instruct), LoRA r16 all-linear, fp32",
        "rows": first["rows"],
        "tokens_per_row": first["tokens_per_row"],
        "steps": first["steps"],
        "tokens_per_step": "8 rows per optimizer step on every side (per_device_batch_size x gradient_accumulation_steps)",
        "repeats": args.repeats,
        "complete": done,
        "sides": summary,
        "ratios": ratios,
        "machine": {**machine_facts(), "load_average": load, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")},
        "equal_work": f"same rows, same optimizer steps, per-step losses within {LOSS_RTOL} relative (asserted)",
        "peak_memory": "max resident set of the training process incl. reaped children (wait4 ru_maxrss)",
    }


if __name__ == "__main__":
    main()
