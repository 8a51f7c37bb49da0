"""Benchmark: items/s of `selfprompt eval` vs lm-evaluation-harness on the same GSM8K items.

    .venv/bin/python bench/eval.py [--items 50] [--rounds 3] [--max-tokens 256] [--batch-size auto]

What is compared, and why it is fair:
- the same first-N GSM8K test items from the local mirror, the same model (the default's converted HF
  folder, fp32, transformers, on the CPU), the same prompt (the question, zero-shot, through the model's
  chat template), greedy on both sides, the same answer length (`--max-tokens`: ours `max_tokens`, the
  peer's `max_gen_toks`), the same stop (the chat template's end of turn `<|im_end|>`, which is also the
  tokenizer's EOS: lm-eval's `until` plus the EOS it adds; ours the EOS);
- the same batch size on both sides: ours chooses it from memory and the model (selfprompt.hardware
  .generation_batch_size, `--batch-size auto`) and lm-eval is given the figure ours chose (`--peer-batch-size`
  overrides it). Both sort requests by length; both stop a batch when every row has stopped;
- ours runs with the trigger pass on (what `selfprompt eval` does by default: a second, short generation per
  item, `trigger_max_tokens` tokens after "Therefore, the answer (arabic numerals) is"); lm-eval has none.

Both are timed end to end (model load, generation, scoring) and without the model load, each run on a fresh
output folder, in one process. One untimed warm-up of each (1 item), then `--rounds` rounds, each running the
two sides one after the other, who goes first alternating. Figures are medians over the rounds with min and
max; the 1-minute load average is recorded at the start and end of every run, and the CPU facts once.

Equal accuracy: ours (strict: the trigger answer; lenient: a fallback fills a missing answer) must be within
`--tolerance` (0.02) of lm-eval's flexible-extract accuracy; the result says whether it held.

Writes bench/results/eval.json.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from figures import at_least, data_dir, medians

from selfprompt.hardware import machine_facts

REPO = Path(__file__).resolve().parents[1]
RESULT = REPO / "bench" / "results" / "eval.json"
STOP = "<|im_end|>"

LM_EVAL_TASK = """task: selfprompt_gsm8k_local
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data_file}
test_split: test
output_type: generate_until
doc_to_text: "{{{{question}}}}"
doc_to_target: "{{{{answer.split('#### ')[-1].strip()}}}}"
num_fewshot: 0
generation_kwargs:
  until: ["{stop}"]
  do_sample: false
  max_gen_toks: {max_tokens}
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
    ignore_case: true
    regexes_to_ignore: [",", "\\\\$", "\\\\.$"]
filter_list:
  - name: flexible-extract
    filter:
      - function: regex
        group_select: -1
        regex_pattern: "(-?[$0-9.,]{{2,}})|(-?[0-9]+)"
      - function: take_first
metadata:
  version: 1.0
"""


def _timing(n: int, started: float, loaded: float, done: float, load_start: float) -> dict:
    """End-to-end and eval-only (model already loaded) figures, and how busy the machine was."""
    return {
        "seconds": done - started,
        "items_per_s": n / (done - started),
        "eval_seconds": done - loaded,
        "eval_items_per_s": n / (done - loaded),
        "load_seconds": loaded - started,
        "load_average_1min": [load_start, os.getloadavg()[0]],
    }


def run_ours(n: int, max_tokens: int, batch_size: int | None) -> dict:
    from selfprompt.evaluate.runner import EvalConfig, run_eval
    from selfprompt.generate.backends import get_backend

    with tempfile.TemporaryDirectory() as out:
        load_start = os.getloadavg()[0]
        started = time.perf_counter()
        backend = get_backend("hf", model="default", batch_size=batch_size, device="cpu")
        loaded = time.perf_counter()
        config = EvalConfig(
            tasks=["gsm8k"],
            conditions=["plain"],
            data_dir=str(data_dir()),
            out=out,
            limit=n,
            seed=None,  # the first n items, as lm-eval reads them
            max_tokens=max_tokens,
            batch_size=batch_size,
        )
        results = run_eval(config, backend=backend)
        done = time.perf_counter()
        decision = backend.decisions["batch_size"]
        backend.close()
    summary = results["tasks"]["gsm8k"]["conditions"]["plain"]
    return {
        "items": n,
        **_timing(n, started, loaded, done, load_start),
        "trigger_pass": True,
        "trigger_max_tokens": config.trigger_max_tokens,
        "batch_size": decision["resolved"],
        "batch_size_decision": decision,
        "accuracy_strict": summary["strict"]["accuracy"],
        "accuracy_lenient": summary["lenient"]["accuracy"],
        "extraction_failure_rate": summary["extraction_failure_rate"],
        "abstained_rate": summary["abstained_rate"],
    }


def run_lm_eval(n: int, max_tokens: int, batch_size: int) -> dict:
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from selfprompt.models import resolve_model

    model_path = resolve_model("default").transformers_path()
    rows = (data_dir() / "gsm8k" / "test.jsonl").read_text(encoding="utf-8").splitlines()[:n]
    with tempfile.TemporaryDirectory() as tmp:
        data_file = Path(tmp) / "gsm8k_subset.jsonl"
        data_file.write_text("\n".join(rows) + "\n", encoding="utf-8")
        task = LM_EVAL_TASK.format(data_file=data_file, max_tokens=max_tokens, stop=STOP)
        (Path(tmp) / "task.yaml").write_text(task, encoding="utf-8")
        load_start = os.getloadavg()[0]
        started = time.perf_counter()
        lm = HFLM(pretrained=model_path, dtype="float32", batch_size=batch_size, device="cpu")
        loaded = time.perf_counter()
        out = lm_eval.simple_evaluate(
            model=lm,
            tasks=["selfprompt_gsm8k_local"],
            task_manager=TaskManager(include_path=tmp),
            apply_chat_template=True,
            log_samples=False,
        )
        done = time.perf_counter()
    metrics = out["results"]["selfprompt_gsm8k_local"]
    return {
        "items": n,
        **_timing(n, started, loaded, done, load_start),
        "version": lm_eval.__version__,
        "batch_size": lm.batch_size,
        "accuracy_flexible_extract": metrics.get("exact_match,flexible-extract"),
    }


TIMINGS = ("seconds", "items_per_s", "eval_seconds", "eval_items_per_s", "load_seconds")


def summary(runs: list[dict]) -> dict:
    """Medians of the timings over the runs, with [min, max] and the relative spread ((max - min) / median)."""
    out = {k: v for k, v in runs[0].items() if k not in TIMINGS and k != "load_average_1min"}
    out.update(medians(runs, TIMINGS))
    out["load_average_1min"] = [r["load_average_1min"] for r in runs]
    out["rounds"] = len(runs)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=at_least(1), default=50)
    parser.add_argument("--rounds", type=at_least(1), default=3)
    parser.add_argument(
        "--max-tokens", type=int, default=256, help="answer length, both sides (256: ours and lm-eval gsm8k default)"
    )
    parser.add_argument("--batch-size", default="auto", help="ours: rows per batch, or auto (chosen from memory)")
    parser.add_argument("--peer-batch-size", type=int, default=None, help="lm-eval's (default: the one ours chose)")
    parser.add_argument("--tolerance", type=float, default=0.02, help="largest accuracy difference that is equal")
    args = parser.parse_args()
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    batch_size = None if args.batch_size == "auto" else int(args.batch_size)

    warm = run_ours(1, args.max_tokens, batch_size)  # untimed: file cache, kernels, lazy imports
    peer_batch = args.peer_batch_size or warm["batch_size"]
    run_lm_eval(1, args.max_tokens, peer_batch)
    contenders = {
        "selfprompt": lambda: run_ours(args.items, args.max_tokens, batch_size),
        "lm_eval": lambda: run_lm_eval(args.items, args.max_tokens, peer_batch),
    }
    runs: dict[str, list[dict]] = {name: [] for name in contenders}
    names = list(contenders)
    for round_ in range(args.rounds):
        for name in names[round_ % 2 :] + names[: round_ % 2]:  # who goes first alternates
            runs[name].append(contenders[name]())
            print(name, json.dumps(runs[name][-1]), flush=True)
    ours, peer = summary(runs["selfprompt"]), summary(runs["lm_eval"])
    differences = {
        "strict": abs(ours["accuracy_strict"] - peer["accuracy_flexible_extract"]),
        "lenient": abs(ours["accuracy_lenient"] - peer["accuracy_flexible_extract"]),
    }
    ratio = ours["items_per_s"] / peer["items_per_s"]
    result = {
        "benchmark": "eval items/s, GSM8K first-N test items, default model, transformers fp32 on CPU, greedy, "
        "ours with the trigger pass",
        "command": "python bench/eval.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None),
        "config": {
            "items": args.items,
            "rounds": args.rounds,
            "max_tokens": args.max_tokens,
            "stop": STOP,
            "batch_size_ours": args.batch_size,
            "batch_size_ours_resolved": ours["batch_size"],
            "batch_size_lm_eval": peer_batch,
            "model": "default (SmolLM2-135M-Instruct, converted HF folder)",
        },
        "machine": machine_facts(),
        "selfprompt": ours,
        "lm_eval": peer,
        "ratio_items_per_s_selfprompt_over_lm_eval": ratio,
        "ratio_eval_items_per_s_selfprompt_over_lm_eval": ours["eval_items_per_s"] / peer["eval_items_per_s"],
        "target_ratio": 3.0,
        "target_met": ratio >= 3.0,
        "equal_accuracy": {
            "condition": f"ours (strict and lenient) within {args.tolerance} of lm-eval's flexible-extract",
            "ours_strict": ours["accuracy_strict"],
            "ours_lenient": ours["accuracy_lenient"],
            "lm_eval_flexible_extract": peer["accuracy_flexible_extract"],
            "differences": differences,
            "held": all(d <= args.tolerance + 1e-9 for d in differences.values()),
        },
        "runs": runs,
        "note": "items_per_s: end to end (model load, generation, scoring); eval_items_per_s: model already "
        "loaded. Medians over the rounds ([min, max] and (max - min) / median beside them); ratios are of "
        "medians. On a shared machine the figures swing with its load (load_average_1min: start, end of each "
        "run). Extraction differs: lm-eval's flexible-extract takes the last number of the answer; ours reads "
        "the trigger pass's answer (strict) or falls back to the answer text (lenient).",
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))
    if not result["equal_accuracy"]["held"]:
        raise SystemExit(f"accuracies differ by more than {args.tolerance}: see {RESULT}")


if __name__ == "__main__":
    main()
