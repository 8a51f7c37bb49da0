"""Training throughput and peak memory on this machine: our recipe in fp32 and in bf16 autocast, and
plain TRL SFTTrainer with its defaults, all in one run on the same rows.

    .venv/bin/python bench/train.py [--rows 16] [--batch 4] [--repeats 3]

Same model (the embedded default), same rows (the shortest LIMA rows with templated role prompts,
in self-prompt form), same batch size, one epoch. Each run is a fresh process (peak RSS is per
process); the sides run interleaved (ours-fp32, ours-bf16, trl, ours-fp32, ...) so a drift in the
machine's speed touches each side alike. Writes bench/results/train.json: per side every run,
the median and min-max of tokens/s and peak RSS, final losses, and the machine: CPU model, the
ISA level torch dispatches to, whether bf16 is native, cores, load averages. `precision: auto`
picks the faster of fp32 and bf16 only where bf16 is native; the fp32/bf16 ratio here shows why.

Equal-work condition: every side sees the same rows in the same number of optimizer steps
(checked). Losses are not comparable across ours and TRL (ours averages over assistant tokens
only, TRL's over all tokens); ours in fp32 and in bf16 should end within a few hundredths.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULT = REPO / "bench" / "results" / "train.json"
SIDES = ("ours-fp32", "ours-bf16", "trl-defaults")


def role_file(rows: int, folder: Path) -> Path:
    from selfprompt.jsonl import write_records
    from selfprompt.train.data import order_rows
    from selfprompt.train.template_roles import lima_template_roles

    data_dir = Path(os.environ.get("SELFPROMPT_DATA_DIR", REPO.parent / "shared" / "data"))
    picked = order_rows(lima_template_roles(data_dir / "lima" / "train.jsonl"), "shortest")[:rows]
    path = folder / "lima-role.jsonl"
    write_records(path, picked)
    return path


def run_ours(data: Path, out: Path, rows: int, batch: int, precision: str) -> dict:
    from selfprompt.train.config import load_config
    from selfprompt.train.recipe import run

    cfg = load_config(
        REPO / "recipes" / "smollm2-135m-lora-cpu.yaml",
        [
            f"data={data}",
            f"output_dir={out}",
            f"max_rows={rows}",
            f"per_device_batch_size={batch}",
            "epochs=1",
            "max_length=4096",
            "save_steps=100000",
            f"precision={precision}",
        ],
    )
    result = run(cfg)
    examples = result.data.examples
    return {
        "trainer": f"selfprompt CPU recipe (LoRA r16, assistant-only loss), precision={precision}",
        "steps": result.global_step,
        "rows": len(examples),
        "seconds": result.train_seconds,
        "trained_tokens": sum(e.trained_tokens for e in examples),
        "tokens": sum(len(e.input_ids) for e in examples),
        "final_loss": result.final_loss,
    }


def run_trl(data: Path, out: Path, rows: int, batch: int) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from selfprompt.format import DEFAULT_FORMAT
    from selfprompt.jsonl import read_records
    from selfprompt.models import resolve_model
    from selfprompt.records import RoleExample

    path = resolve_model("default").transformers_path()
    records = read_records(data, RoleExample)[:rows]
    dataset = Dataset.from_list(
        [
            {
                "messages": [
                    {"role": "user", "content": r.question},
                    {"role": "assistant", "content": DEFAULT_FORMAT.render(r.role_prompt, r.answer)},
                ]
            }
            for r in records
        ]
    )
    args = SFTConfig(
        output_dir=str(out),
        per_device_train_batch_size=batch,
        num_train_epochs=1,
        report_to=[],
        save_strategy="no",
        logging_steps=1,
        seed=42,
        use_cpu=not torch.cuda.is_available(),
    )  # required on CPU: TRL defaults to bf16
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(path),
        args=args,
        train_dataset=dataset,
        processing_class=AutoTokenizer.from_pretrained(path),
    )
    seconds = trainer.train().metrics["train_runtime"]
    tokens = sum(len(x) for x in trainer.train_dataset["input_ids"])
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {
        "trainer": "trl.SFTTrainer defaults (full fine-tuning, loss on all tokens, fp32 on CPU)",
        "steps": trainer.state.global_step,
        "rows": len(records),
        "seconds": seconds,
        "trained_tokens": tokens,
        "tokens": tokens,
        "final_loss": losses[-1] if losses else None,
    }


def child(side: str, data: Path, out: Path, rows: int, batch: int) -> None:
    if side == "trl-defaults":
        result = run_trl(data, out, rows, batch)
    else:
        result = run_ours(data, out, rows, batch, side.split("-")[1])
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    result["trained_tokens_per_s"] = result["trained_tokens"] / result["seconds"]
    result["tokens_per_s"] = result["tokens"] / result["seconds"]
    print("RESULT " + json.dumps(result), flush=True)


def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": values}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sides", default=",".join(SIDES), help=f"comma-separated subset of {SIDES}")
    parser.add_argument("--child", choices=SIDES)
    parser.add_argument("--data")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.child:
        child(args.child, Path(args.data), Path(args.out), args.rows, args.batch)
        return

    from selfprompt.hardware import cpu_facts, machine_facts, resolve_precision

    sides = [s for s in args.sides.split(",") if s]
    runs: dict[str, list[dict]] = {s: [] for s in sides}
    load = {"at_start": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        data = role_file(args.rows, Path(tmp))
        for repeat in range(args.repeats):
            for side in sides:
                out = Path(tmp) / f"{side}-{repeat}"
                proc = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--child",
                        side,
                        "--data",
                        str(data),
                        "--out",
                        str(out),
                        "--rows",
                        str(args.rows),
                        "--batch",
                        str(args.batch),
                    ],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
                if line is None:
                    raise SystemExit(f"{side} failed:\n{proc.stderr[-3000:]}")
                runs[side].append(json.loads(line[len("RESULT ") :]))
                print(f"{side} #{repeat + 1}: {runs[side][-1]['tokens_per_s']:.1f} tokens/s", file=sys.stderr)
    load["at_end"] = os.getloadavg()

    steps = {s: {r["steps"] for r in rs} for s, rs in runs.items()}
    assert len({frozenset(v) for v in steps.values()}) == 1, f"sides ran different step counts: {steps}"
    summary = {}
    for side, rs in runs.items():
        summary[side] = {
            "trainer": rs[0]["trainer"],
            "steps": rs[0]["steps"],
            "rows": rs[0]["rows"],
            "tokens": rs[0]["tokens"],
            "trained_tokens": rs[0]["trained_tokens"],
            "tokens_per_s": spread([r["tokens_per_s"] for r in rs]),
            "trained_tokens_per_s": spread([r["trained_tokens_per_s"] for r in rs]),
            "peak_rss_mb": spread([r["peak_rss_mb"] for r in rs]),
            "final_loss": [r["final_loss"] for r in rs],
        }
    ratios = {}
    if "ours-fp32" in summary and "ours-bf16" in summary:
        ratios["bf16_over_fp32_tokens_per_s"] = [
            b["tokens_per_s"] / f["tokens_per_s"] for f, b in zip(runs["ours-fp32"], runs["ours-bf16"])
        ]
    if "ours-fp32" in summary and "trl-defaults" in summary:
        ratios["ours_fp32_over_trl_trained_tokens_per_s"] = [
            o["trained_tokens_per_s"] / t["trained_tokens_per_s"]
            for o, t in zip(runs["ours-fp32"], runs["trl-defaults"])
        ]
    ratios = {k: spread(v) for k, v in ratios.items()}
    facts = cpu_facts()
    report = {
        "benchmark": "train",
        "command": "python bench/train.py " + " ".join(sys.argv[1:]),
        "model": "default (SmolLM2-135M-Instruct)",
        "rows": args.rows,
        "batch": args.batch,
        "repeats": args.repeats,
        "sides": summary,
        "ratios": ratios,
        "auto_precision_here": resolve_precision("auto", facts, None).as_dict(),
        "machine": {**machine_facts(), "load_average": load},
        "equal_work": "every side trains the same rows for the same number of optimizer steps (asserted)",
        "note": "losses are not comparable between ours (assistant tokens only) and TRL (all tokens)",
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("ratios", "auto_precision_here")}, indent=2))


if __name__ == "__main__":
    main()
