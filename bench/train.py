"""Training throughput and peak memory: our trainer vs plain TRL SFTTrainer with its defaults.

Same model (the embedded default), same rows (the shortest LIMA rows, with templated role
prompts, in self-prompt form), same number of optimizer steps and batch size, one epoch so every
row is seen once. Each trainer runs in its own fresh process (peak RSS is per process), both in
this one invocation. Writes bench/results/train.json with both figures, their ratio and both
final losses.

    .venv/bin/python bench/train.py [--rows 32] [--batch 4]

What differs, on purpose, is what each does by default: ours trains LoRA (the CPU recipe) with
bf16 autocast and loss on the assistant turn only; TRL's defaults train the full model on every
token. "Trained tokens/s" counts tokens that carry loss; "tokens/s" counts all tokens processed;
both over trainer.train() time only (HF Trainer's train_runtime), not loading or data preparation.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULT = REPO / "bench" / "results" / "train.json"


def role_file(rows: int, folder: Path) -> Path:
    import os

    from selfprompt.jsonl import write_records
    from selfprompt.train.data import order_rows
    from selfprompt.train.template_roles import lima_template_roles

    data_dir = Path(os.environ.get("SELFPROMPT_DATA_DIR", REPO.parent / "shared" / "data"))
    picked = order_rows(lima_template_roles(data_dir / "lima" / "train.jsonl"), "shortest")[:rows]
    path = folder / "lima-role.jsonl"
    write_records(path, picked)
    return path


def run_ours(data: Path, out: Path, rows: int, batch: int) -> dict:
    from selfprompt.train.config import load_config
    from selfprompt.train.recipe import run

    cfg = load_config(REPO / "recipes" / "smollm2-135m-lora-cpu.yaml", [
        f"data={data}", f"output_dir={out}", f"max_rows={rows}", f"per_device_batch_size={batch}", "epochs=1",
        "max_length=4096", "save_steps=100000",
    ])
    result = run(cfg)
    seconds = result.train_seconds  # trainer.train() only, as for TRL below
    examples = result.data.examples
    return {
        "trainer": "selfprompt (CPU recipe: LoRA r16, bf16 autocast, assistant-only loss)",
        "steps": result.global_step, "rows": len(examples), "seconds": seconds,
        "trained_tokens": sum(e.trained_tokens for e in examples), "tokens": sum(len(e.input_ids) for e in examples),
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
    dataset = Dataset.from_list([{"messages": [
        {"role": "user", "content": r.question},
        {"role": "assistant", "content": DEFAULT_FORMAT.render(r.role_prompt, r.answer)},
    ]} for r in records])
    args = SFTConfig(output_dir=str(out), per_device_train_batch_size=batch, num_train_epochs=1, report_to=[],
                     save_strategy="no", logging_steps=1, seed=42,
                     use_cpu=not torch.cuda.is_available())  # required on CPU: TRL defaults to bf16
    trainer = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(path), args=args, train_dataset=dataset,
                         processing_class=AutoTokenizer.from_pretrained(path))
    seconds = trainer.train().metrics["train_runtime"]
    tokens = sum(len(x) for x in trainer.train_dataset["input_ids"])
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {
        "trainer": "trl.SFTTrainer defaults (full fine-tuning, loss on all tokens)",
        "steps": trainer.state.global_step, "rows": len(records), "seconds": seconds,
        "trained_tokens": tokens, "tokens": tokens, "final_loss": losses[-1] if losses else None,
    }


def child(which: str, data: Path, out: Path, rows: int, batch: int) -> None:
    result = (run_ours if which == "ours" else run_trl)(data, out, rows, batch)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    result["trained_tokens_per_s"] = result["trained_tokens"] / result["seconds"]
    result["tokens_per_s"] = result["tokens"] / result["seconds"]
    print("RESULT " + json.dumps(result), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=32)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--child", choices=["ours", "trl"])
    parser.add_argument("--data")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.child:
        child(args.child, Path(args.data), Path(args.out), args.rows, args.batch)
        return
    with tempfile.TemporaryDirectory() as tmp:
        data = role_file(args.rows, Path(tmp))
        results = {}
        for which in ("ours", "trl"):
            proc = subprocess.run(
                [sys.executable, __file__, "--child", which, "--data", str(data), "--out", str(Path(tmp) / which),
                 "--rows", str(args.rows), "--batch", str(args.batch)],
                capture_output=True, text=True, check=False,
            )
            line = next((l for l in proc.stdout.splitlines() if l.startswith("RESULT ")), None)
            if line is None:
                raise SystemExit(f"{which} failed:\n{proc.stderr[-3000:]}")
            results[which] = json.loads(line[len("RESULT "):])
    ours, trl = results["ours"], results["trl"]
    report = {
        "benchmark": "train", "model": "default (SmolLM2-135M-Instruct)", "rows": args.rows, "batch": args.batch,
        "ours": ours, "trl_defaults": trl,
        "ratio_trained_tokens_per_s": ours["trained_tokens_per_s"] / trl["trained_tokens_per_s"],
        "ratio_tokens_per_s": ours["tokens_per_s"] / trl["tokens_per_s"],
        "ratio_peak_rss": ours["peak_rss_mb"] / trl["peak_rss_mb"],
        "final_loss": {"ours": ours["final_loss"], "trl_defaults": trl["final_loss"]},
        "machine": {"cpu_count": os.cpu_count(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
                    "load_average_at_end": os.getloadavg()},
        "note": "final losses are not comparable as quality: ours averages over assistant tokens only, TRL's over all tokens",
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
