"""A short check of the CUDA training path: tiny random-weight Llama and Mistral, LoRA and full, through selfprompt.train.

    bash scripts/gpu-check.sh                                        # one CUDA GPU, bf16 -> bench/results/gpu-check.json
    python scripts/gpu_check.py --device cpu --out /tmp/gpu-check.json  # the same on CPU in fp32 (tests/test_gpu_check.py)

Nothing is downloaded. Each model is built from its config (LlamaConfig / MistralConfig, hidden 64,
2 layers) with a byte-level BPE tokenizer trained here on the check's own rows, with Llama/Mistral's
special tokens (<s>, </s>), and saved without a chat template, like the base models the paper tuned.
Each case then runs the project's own recipe (selfprompt.train.recipe.run) with the shipped template
of its family (llama2, mistral): bf16 on a GPU (fp32 on CPU), gradient checkpointing, SDPA attention,
a few optimizer steps; asserts the loss is finite and falls; reloads the saved model through the hf
backend (adapter over base for LoRA) and generates, plain and with a prefill. The JSON result has the
torch/CUDA versions, the device, and per case the loss curve and seconds. Exit status 1 if a case fails.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any

CASES = [("llama", "lora"), ("llama", "full"), ("mistral", "lora"), ("mistral", "full")]
TEMPLATE_OF = {"llama": "llama2", "mistral": "mistral"}  # the shipped chat template of each family
HIDDEN, LAYERS, HEADS, KV_HEADS = 64, 2, 4, 2  # tiny: the check is about the code path, not the model
VOCAB = 512
ROWS = 24
# A learning rate this high only suits a random tiny model: it makes "the loss falls" visible in a few steps.
LEARNING_RATE = {"lora": 5e-3, "full": 2e-3}
BASE_PARAMETERS: dict[str, int] = {}  # family -> parameter count of its saved random base


def rows() -> list:
    """LIMA-Role rows, made up: short arithmetic questions with a role prompt and an answer."""
    from selfprompt.records import Annotation, RoleExample

    out = []
    for i in range(ROWS):
        a, b = 3 + i, 7 + 2 * i
        out.append(
            RoleExample(
                id=f"check-{i:03d}",
                question=f"What is {a} plus {b}?",
                answer=f"{a} plus {b} is {a + b}.",
                source="gpu-check",
                role_prompt="From now on, you are an expert in arithmetic who adds numbers carefully.",
                annotation=Annotation(teacher="gpu-check", template="fixed", template_version="1", status="ok"),
            )
        )
    return out


def build_tokenizer(texts: list[str]):
    """A byte-level BPE trained on `texts`, with Llama/Mistral's special tokens, as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>"
    )


def build_base_model(arch: str, tokenizer, folder: Path, seed: int) -> int:
    """Random weights from a config, saved with the tokenizer (no chat template); returns the parameter count."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, MistralConfig

    common: dict[str, Any] = dict(
        vocab_size=len(tokenizer),
        hidden_size=HIDDEN,
        intermediate_size=2 * HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=KV_HEADS,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    config = LlamaConfig(**common) if arch == "llama" else MistralConfig(sliding_window=256, **common)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return sum(p.numel() for p in model.parameters())


def run_case(arch: str, method: str, work: Path, data: Path, tokenizer, precision: str, steps: int) -> dict:
    from selfprompt.generate.backends import get_backend
    from selfprompt.generate.backends.base import ChatRequest, Sampling
    from selfprompt.generate.backends.hf import render_prompt
    from selfprompt.records import Message
    from selfprompt.train import recipe
    from selfprompt.train.config import TrainConfig
    from selfprompt.train.templates import load_template_pair

    template = TEMPLATE_OF[arch]
    started = time.perf_counter()
    base = work / f"{arch}-base"
    if arch not in BASE_PARAMETERS:  # LoRA and full of one family start from the same base
        BASE_PARAMETERS[arch] = build_base_model(arch, tokenizer, base, seed=0)
    cfg = TrainConfig(
        model=str(base),
        data=str(data),
        output_dir=str(work / f"{arch}-{method}"),
        chat_template=template,
        method=method,
        lora_r=8,
        lora_alpha=16,
        lora_dropout=0.0,
        gradient_checkpointing=True,
        max_steps=steps,
        per_device_batch_size=4,
        learning_rate=LEARNING_RATE[method],
        lr_scheduler="constant",
        max_length=256,
        precision=precision,
        logging_steps=1,
        save_steps=10_000,  # the final save only
        seed=0,
    )
    result = recipe.run(cfg)
    assert result is not None and result.completed, "the run did not complete"
    curve = read_loss_curve(result.output_dir / recipe.LOSS_CSV)
    check_loss(curve, steps)
    train_seconds = time.perf_counter() - started

    # Reload what was saved (adapter over its base for LoRA) and generate through the project's hf backend.
    reload_started = time.perf_counter()
    backend = get_backend("hf", model=str(result.output_dir), batch_size=2)
    try:
        assert backend.tokenizer.chat_template == load_template_pair(template).original, "saved template differs"
        attn = backend.model.config._attn_implementation
        assert attn == "sdpa", f"attention implementation {attn}, expected sdpa"
        sampling = Sampling(max_tokens=8, temperature=0.0)
        question = [Message(role="user", content="What is 5 plus 9?")]
        plain = ChatRequest(messages=question, sampling=sampling)
        prefilled = ChatRequest(messages=question, sampling=sampling, assistant_prefix="<role>\n")
        outputs = backend.generate([plain, prefilled])
        assert all(o.usage.completion_tokens > 0 for o in outputs), "generation produced no tokens"
        prompt_tail = render_prompt(backend.tokenizer, prefilled)[-24:]
        dtype = str(next(backend.model.parameters()).dtype).removeprefix("torch.")
    finally:
        backend.close()
    return {
        "arch": arch,
        "method": method,
        "chat_template": template,
        "base_parameters": BASE_PARAMETERS[arch],
        "precision": precision,
        "gradient_checkpointing": cfg.gradient_checkpointing,
        "attn_implementation": attn,
        "steps": result.global_step,
        "loss": curve,
        "loss_first": curve[0],
        "loss_last": curve[-1],
        "trainer_seconds": round(result.train_seconds, 3),
        "train_seconds": round(train_seconds, 3),
        "reload_generate": {
            "dtype": dtype,
            "completion_tokens": [o.usage.completion_tokens for o in outputs],
            "prefill_prompt_tail": prompt_tail,
            "seconds": round(time.perf_counter() - reload_started, 3),
        },
        "seconds": round(time.perf_counter() - started, 3),
        "ok": True,
    }


def read_loss_curve(path: Path) -> list[float]:
    import csv

    with path.open() as f:
        return [float(row["loss"]) for row in csv.DictReader(f)]


def check_loss(curve: list[float], steps: int) -> None:
    """Finite at every step, one value per step, and lower at the end than at the start (means of thirds)."""
    assert len(curve) == steps, f"{len(curve)} loss values for {steps} steps"
    assert all(math.isfinite(x) for x in curve), f"loss not finite: {curve}"
    third = max(1, steps // 3)
    first, last = sum(curve[:third]) / third, sum(curve[-third:]) / third
    assert last < first, f"loss did not fall: first steps {first:.4f}, last steps {last:.4f} ({curve})"


def environment(device: str) -> dict:
    import peft
    import torch
    import transformers
    import trl

    from selfprompt.hardware import cpu_facts

    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.cuda.is_available() else None,
        "transformers": transformers.__version__,
        "trl": trl.__version__,
        "peft": peft.__version__,
        "device_kind": device,
        "device": torch.cuda.get_device_name(0) if device == "cuda" else f"CPU {cpu_facts().describe()}",
    }
    if device == "cuda":
        info["bf16_supported"] = torch.cuda.is_bf16_supported()
        info["gpu_count"] = torch.cuda.device_count()
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto")
    parser.add_argument("--out", default="bench/results/gpu-check.json", help="Where the JSON result goes.")
    parser.add_argument("--work", default=None, help="Scratch folder (default: a temporary one).")
    parser.add_argument("--steps", type=int, default=12, help="Optimizer steps per case.")
    parser.add_argument("--cases", default=",".join(f"{a}-{m}" for a, m in CASES), help="e.g. llama-lora,mistral-full")
    args = parser.parse_args(argv)
    names = {f"{a}-{m}": (a, m) for a, m in CASES}
    unknown = [c for c in args.cases.split(",") if c not in names]
    if unknown:
        print(f"gpu-check: unknown case(s) {', '.join(unknown)}; valid: {', '.join(names)}", file=sys.stderr)
        return 2
    wanted = [names[c] for c in args.cases.split(",")]

    if args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before torch is imported: the recipe and backend then see no GPU
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cuda" and device != "cuda":
        print("gpu-check: --device cuda but torch sees no CUDA GPU", file=sys.stderr)
        return 2
    precision = "bf16" if device == "cuda" else "fp32"
    import tempfile

    from selfprompt.jsonl import write_records

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        data = work / "lima-role.jsonl"
        examples = rows()
        write_records(data, examples)
        texts = [t for r in examples for t in (r.question, r.answer, r.role_prompt)] + ["[INST] [/INST] <<SYS>>"]
        tokenizer = build_tokenizer(texts)
        cases = []
        for arch, method in wanted:
            print(f"gpu-check: {arch} {method} on {device} ({precision})", file=sys.stderr, flush=True)
            try:
                cases.append(run_case(arch, method, work, data, tokenizer, precision, args.steps))
            except Exception as e:  # one failing case must not hide the others' results
                traceback.print_exc()
                cases.append({"arch": arch, "method": method, "ok": False, "error": f"{type(e).__name__}: {e}"})
    result = {
        "command": "bash scripts/gpu-check.sh" if device == "cuda" else " ".join(["python", *sys.argv]),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **environment(device),
        "model": {"hidden_size": HIDDEN, "layers": LAYERS, "heads": HEADS, "kv_heads": KV_HEADS, "vocab": VOCAB},
        "steps": args.steps,
        "cases": cases,
        "ok": all(c["ok"] for c in cases),
        "seconds": round(time.perf_counter() - started, 3),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    summary = ", ".join(
        f"{c['arch']}-{c['method']}: "
        + (f"loss {c['loss_first']:.3f} -> {c['loss_last']:.3f}" if c["ok"] else "FAILED")
        for c in cases
    )
    print(f"gpu-check: {'ok' if result['ok'] else 'FAILED'} in {result['seconds']:.0f} s ({summary}) -> {out}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
