"""Benchmark: a decode step of the default model with nn.Linear's product against the weight-first one.

    .venv/bin/python bench/decode_linears.py [--rows 1,2,3,4,6,8,16] [--steps 24] [--rounds 3]

Why: during decoding every linear layer multiplies its weight by a few rows, and PyTorch's CPU BLAS is slow at
`x @ W.T` (nn.Linear) for some row counts where `(W @ x.T).T` is fast (src/selfprompt/generate/backends/cpu_linear
.py). This measures it where it matters, in the real model (SmolLM2-135M, fp32, transformers, its 211 products
per step reading ~540 MB of weights from memory): for each batch size, `rows` GSM8K questions are encoded, then
`--steps` greedy decode steps are timed, once with each product. The peer is transformers' model as loaded
(nn.Linear); ours is the same model with every nn.Linear given `weight_first_linear`, forced on at every row
count here (the library uses it only where this bench found it faster: `WEIGHT_FIRST_ROWS`).

Both are timed in two places: the main thread (in-process generation: eval, answers, the judge) and one
long-lived worker thread (where `selfprompt serve`'s batching loop runs the model; on this machine OpenMP makes
the same products slower there, and the one-row product is then faster with nn.Linear). Each round times both
sides one after the other (who goes first alternating), `--rounds` rounds, after one untimed warm-up of each; figures are medians of the per-step milliseconds with [min, max] and spread, the
1-minute load average before and after every run, and the CPU facts.

Equal outputs: the condition checked is that both sides choose the same greedy token at every step of every row
(`same_tokens`), with the largest logit difference beside it (the products sum in another order: fp32 rounding).

Writes bench/results/decode_linears.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

from figures import at_least, data_dir, medians

from selfprompt.data.mirror import mirror_path
from selfprompt.generate.backends import cpu_linear
from selfprompt.hardware import machine_facts

REPO = Path(__file__).resolve().parents[1]
RESULT = REPO / "bench" / "results" / "decode_linears.json"


def questions(n: int) -> list[str]:
    """The first n GSM8K test questions of the data mirror (SELFPROMPT_DATA_DIR or ../shared/data, checked)."""
    with mirror_path("gsm8k", data_dir()).open(encoding="utf-8") as f:
        return [json.loads(line)["question"] for line, _ in zip(f, range(n))]


def set_product(model, weight_first: bool) -> None:
    """Every nn.Linear of `model` on the weight-first forward (forced at any row count) or on its own."""
    import torch

    for module in model.modules():
        if type(module) is torch.nn.Linear:
            module.__dict__.pop("forward", None)
    if weight_first:
        cpu_linear.use_weight_first_linears(model)


def decode(model, tokenizer, prompts: list[str], steps: int) -> dict:
    """Encode `prompts` (left-padded), then `steps` greedy steps; ms per step, the tokens and the last logits."""
    import torch
    from transformers import DynamicCache

    enc = tokenizer(prompts, return_tensors="pt", padding=True)
    mask = enc["attention_mask"]
    with torch.inference_mode():
        cache = DynamicCache()
        out = model(**enc, cache=cache, use_cache=True)
        tokens, logits = [out.logits[:, -1].argmax(-1)], []
        start = time.perf_counter()
        for _ in range(steps):
            mask = torch.cat([mask, mask.new_ones(len(prompts), 1)], dim=1)
            out = model(input_ids=tokens[-1][:, None], attention_mask=mask, cache=cache, use_cache=True)
            logits.append(out.logits[:, -1])
            tokens.append(logits[-1].argmax(-1))
        seconds = time.perf_counter() - start
    return {"ms_per_step": seconds / steps * 1e3, "tokens": torch.stack(tokens, 1), "logits": torch.stack(logits, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1,2,3,4,6,8,16", help="batch sizes (rows per decode step), commas")
    parser.add_argument("--steps", type=at_least(1), default=24)
    parser.add_argument("--rounds", type=at_least(1), default=3)
    args = parser.parse_args()
    rows_list = [int(r) for r in args.rows.split(",")]

    import torch

    from selfprompt.models import load_causal_lm, load_tokenizer, resolve_model

    original_rows = cpu_linear.WEIGHT_FIRST_ROWS
    cpu_linear.WEIGHT_FIRST_ROWS = range(1, max(rows_list) + 1)  # forced on for every size measured here
    resolved = resolve_model("default")
    tokenizer = load_tokenizer(resolved)
    tokenizer.padding_side = "left"
    model = load_causal_lm(resolved, dtype=torch.float32, device="cpu").eval()
    texts = questions(max(rows_list))
    prompts = [
        tokenizer.apply_chat_template([{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True)
        for q in texts
    ]
    sides = {"nn_linear": False, "weight_first": True}
    for weight_first in sides.values():  # untimed warm-up
        set_product(model, weight_first)
        decode(model, tokenizer, prompts[:2], 2)

    worker = ThreadPoolExecutor(max_workers=1)  # one long-lived thread, like the serving loop's
    places = {"main_thread": lambda f: f(), "worker_thread": lambda f: worker.submit(f).result()}
    by_place: dict[str, dict] = {place: {} for place in places}
    faster_everywhere = []
    for rows in rows_list:
        for place, run_in in places.items():
            runs: dict[str, list[dict]] = {side: [] for side in sides}
            last: dict[str, dict] = {}
            for round_ in range(args.rounds):
                order = list(sides) if round_ % 2 == 0 else list(reversed(sides))
                for side in order:
                    set_product(model, sides[side])
                    load_before = os.getloadavg()[0]
                    last[side] = run_in(partial(decode, model, tokenizer, prompts[:rows], args.steps))
                    runs[side].append(
                        {
                            "ms_per_step": last[side]["ms_per_step"],
                            "load_average_1min": [load_before, os.getloadavg()[0]],
                        }
                    )
            figures = {side: {**medians(runs[side], ("ms_per_step",)), "runs": runs[side]} for side in sides}
            same = bool(torch.equal(last["nn_linear"]["tokens"], last["weight_first"]["tokens"]))
            diff = float((last["nn_linear"]["logits"] - last["weight_first"]["logits"]).abs().max())
            speedup = figures["nn_linear"]["ms_per_step"] / figures["weight_first"]["ms_per_step"]
            by_place[place][str(rows)] = {
                **figures,
                "speedup_weight_first": speedup,
                "same_tokens": same,
                "max_logit_difference": diff,
            }
            print(
                f"rows {rows} {place}: nn.Linear {figures['nn_linear']['ms_per_step']:.1f} ms/step, weight-first "
                f"{figures['weight_first']['ms_per_step']:.1f} ms/step, same tokens {same}, max logit diff "
                f"{diff:.2e}",
                flush=True,
            )
        if all(by_place[place][str(rows)]["speedup_weight_first"] > 1 for place in places):
            faster_everywhere.append(rows)
    worker.shutdown()

    result = {
        "benchmark": "ms per greedy decode step of the default model (fp32, CPU), nn.Linear against weight-first",
        "command": "python bench/decode_linears.py "
        + f"--rows {args.rows} --steps {args.steps} --rounds {args.rounds}",
        "config": {"rows": rows_list, "steps": args.steps, "rounds": args.rounds, "threads": torch.get_num_threads()},
        "machine": machine_facts(),
        "equal_outputs": "same greedy token at every step of every row (same_tokens), largest logit difference",
        "by_place": by_place,
        "weight_first_faster_in_both_places_at_rows": faster_everywhere,
        "weight_first_rows_used": [min(original_rows), max(original_rows)],
        "load_average_at_end": os.getloadavg(),
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULT}")


if __name__ == "__main__":
    main()
