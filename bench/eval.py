"""Benchmark: items/s of `selfprompt eval` vs lm-evaluation-harness on the same GSM8K subset.

Same model (the default's converted HF folder), same backend kind (transformers, greedy), same
first-N GSM8K test items read from the local mirror, same prompt (the question, zero-shot, through
the model's chat template) and the same answer length. Both are timed end to end (model load,
generation, scoring) and without the model load, in one process, one after the other, each on a
fresh output folder.

Our figure is taken twice: without the trigger pass (the same work as lm-eval: one generation per
item) and with it (what `selfprompt eval` does by default: a second, short generation per item).
One untimed warm-up of each (so the first timed run does not pay for the page cache and kernel
set-up alone), then `--repeats` rounds, each running the three in a rotated order; every figure is
the median over the rounds, with min and max beside it.

    .venv/bin/python bench/eval.py [--items 10] [--max-tokens 64] [--batch-size 8] [--repeats 3]

Writes bench/results/eval.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from selfprompt.hardware import machine_facts

REPO = Path(__file__).resolve().parents[1]
RESULT = REPO / "bench" / "results" / "eval.json"

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
  until: ["<|im_end|>"]
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


def data_dir() -> Path:
    return Path(os.environ.get("SELFPROMPT_DATA_DIR", REPO.parent / "shared" / "data"))


def _timing(n: int, started: float, loaded: float, done: float, load_avg: float) -> dict:
    """End-to-end and eval-only (model already loaded) figures; the load average says how busy the machine was."""
    return {
        "seconds": done - started,
        "items_per_s": n / (done - started),
        "eval_seconds": done - loaded,
        "eval_items_per_s": n / (done - loaded),
        "load_seconds": loaded - started,
        "load_average_1min_at_start": load_avg,
    }


def run_ours(n: int, max_tokens: int, batch_size: int, trigger: bool) -> dict:
    from selfprompt.evaluate.runner import EvalConfig, run_eval
    from selfprompt.generate.backends import get_backend

    with tempfile.TemporaryDirectory() as out:
        load_avg = os.getloadavg()[0]
        started = time.perf_counter()
        backend = get_backend("hf", model="default", batch_size=batch_size)
        loaded = time.perf_counter()
        config = EvalConfig(
            tasks=["gsm8k"],
            conditions=["plain"],
            data_dir=str(data_dir()),
            out=out,
            limit=n,
            seed=None,
            max_tokens=max_tokens,
            batch_size=batch_size,
            no_trigger=not trigger,
        )
        results = run_eval(config, backend=backend)
        done = time.perf_counter()
        backend.close()
    summary = results["tasks"]["gsm8k"]["conditions"]["plain"]
    return {
        "items": n,
        **_timing(n, started, loaded, done, load_avg),
        "trigger_pass": trigger,
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
        (Path(tmp) / "task.yaml").write_text(LM_EVAL_TASK.format(data_file=data_file, max_tokens=max_tokens))
        load_avg = os.getloadavg()[0]
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
        **_timing(n, started, loaded, done, load_avg),
        "version": lm_eval.__version__,
        "accuracy_flexible_extract": metrics.get("exact_match,flexible-extract"),
    }


TIMINGS = ("seconds", "items_per_s", "eval_seconds", "eval_items_per_s", "load_seconds")


def _summary(runs: list[dict]) -> dict:
    """The runs' figures: medians (and min, max) of the timings; the rest is the same in every run."""
    out = {k: v for k, v in runs[0].items() if k not in TIMINGS and k != "load_average_1min_at_start"}
    for key in TIMINGS:
        values = [r[key] for r in runs]
        out[key] = statistics.median(values)
        out[f"{key}_min_max"] = [min(values), max(values)]
    out["load_average_1min_at_start"] = [r["load_average_1min_at_start"] for r in runs]
    out["repeats"] = len(runs)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    contenders = {
        "selfprompt": lambda n: run_ours(n, args.max_tokens, args.batch_size, trigger=False),
        "lm_eval": lambda n: run_lm_eval(n, args.max_tokens, args.batch_size),
        "selfprompt_with_trigger_pass": lambda n: run_ours(n, args.max_tokens, args.batch_size, trigger=True),
    }
    for run in contenders.values():  # warm-up, untimed: file cache, kernels, lazy imports
        run(1)
    names = list(contenders)
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for round_ in range(args.repeats):
        for name in names[round_ % 3 :] + names[: round_ % 3]:  # rotate who goes first
            runs[name].append(contenders[name](args.items))
    ours, peer, ours_trigger = (_summary(runs[n]) for n in ("selfprompt", "lm_eval", "selfprompt_with_trigger_pass"))
    result = {
        "benchmark": "eval items/s, GSM8K first-N test items, default model, transformers, greedy",
        "config": {
            "items": args.items,
            "max_tokens": args.max_tokens,
            "batch_size": args.batch_size,
            "repeats": args.repeats,
            "threads": os.cpu_count(),
            "model": "default (SmolLM2-135M-Instruct, converted HF folder)",
        },
        "machine": machine_facts(),
        "selfprompt": ours,
        "selfprompt_with_trigger_pass": ours_trigger,
        "lm_eval": peer,
        "ratio_items_per_s_selfprompt_over_lm_eval": ours["items_per_s"] / peer["items_per_s"],
        "ratio_eval_items_per_s_selfprompt_over_lm_eval": ours["eval_items_per_s"] / peer["eval_items_per_s"],
        "ratio_items_per_s_selfprompt_with_trigger_over_lm_eval": ours_trigger["items_per_s"] / peer["items_per_s"],
        "runs": runs,
        "note": "items_per_s: end to end (model load, generation, scoring); eval_items_per_s: model already loaded. "
        "Medians over the rounds (min, max beside them); ratios are of medians. On a shared machine the "
        "figures swing with its load (see load_average_1min_at_start). Accuracies "
        "differ in extraction: lm-eval's flexible-extract takes the last number; ours reports strict "
        "(the trigger answer only), lenient (a fallback only fills a missing answer) and the abstained "
        "rate (explicit non-answers, scored wrong); see bench/results/scorer_agreement.json for every "
        "item where the two readings differ.",
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
