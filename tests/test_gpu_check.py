"""scripts/gpu_check.py on CPU in fp32: everything the GPU check does except the CUDA parts (~30-60 s).

The script trains tiny random-weight Llama and Mistral models (LoRA and full) through the project's
recipe with the shipped templates, reloads and generates; here it runs as a user would run it, in a
subprocess, and its JSON result is checked.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "gpu_check.py"
STEPS = 8


def run_check(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--device", "cpu", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_gpu_check_runs_on_cpu(tmp_path):
    out = tmp_path / "gpu-check.json"
    proc = run_check("--steps", str(STEPS), "--out", str(out), "--work", str(tmp_path / "work"))
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(out.read_text())
    assert result["ok"] and result["device_kind"] == "cpu" and result["cuda"] is None
    for key in ("torch", "transformers", "trl", "peft", "device", "created", "seconds"):
        assert result[key], key
    assert [(c["arch"], c["method"]) for c in result["cases"]] == [
        ("llama", "lora"),
        ("llama", "full"),
        ("mistral", "lora"),
        ("mistral", "full"),
    ]
    for case in result["cases"]:
        assert case["ok"], case
        assert case["chat_template"] == {"llama": "llama2", "mistral": "mistral"}[case["arch"]]
        assert (case["precision"], case["attn_implementation"], case["gradient_checkpointing"]) == (
            "fp32",
            "sdpa",
            True,
        )
        loss = case["loss"]
        assert len(loss) == STEPS == case["steps"] and all(math.isfinite(x) for x in loss)
        assert sum(loss[-2:]) / 2 < sum(loss[:2]) / 2, loss  # falling
        assert case["base_parameters"] > 0 and case["seconds"] > 0
        generated = case["reload_generate"]
        assert all(n > 0 for n in generated["completion_tokens"]) and generated["dtype"] == "float32"
        # the prefill of the reloaded model opens its turn exactly as training did: "[/INST] " then the prefix
        assert generated["prefill_prompt_tail"].endswith("[/INST] <role>\n")
    lora = {c["arch"]: c for c in result["cases"] if c["method"] == "lora"}
    full = {c["arch"]: c for c in result["cases"] if c["method"] == "full"}
    for arch in ("llama", "mistral"):  # both methods start from the same saved random base
        assert lora[arch]["base_parameters"] == full[arch]["base_parameters"]
        assert math.isclose(lora[arch]["loss"][0], full[arch]["loss"][0], rel_tol=1e-5)  # LoRA starts as the base


def test_gpu_check_refuses_an_unknown_case(tmp_path):
    proc = run_check("--cases", "llama-qlora", "--out", str(tmp_path / "x.json"), timeout=120)
    assert proc.returncode == 2 and "llama-qlora" in proc.stderr and "mistral-full" in proc.stderr
    assert not (tmp_path / "x.json").exists()


@pytest.mark.gpu
def test_gpu_check_on_a_gpu(tmp_path):
    """The real thing, where a CUDA GPU exists: bf16 on the GPU (scripts/gpu-check.sh runs the same)."""
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    out = tmp_path / "gpu-check.json"
    env = {**os.environ}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--device", "cuda", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(out.read_text())
    assert result["ok"] and result["device_kind"] == "cuda" and result["cuda"]
    assert all(c["precision"] == "bf16" and c["reload_generate"]["dtype"] == "bfloat16" for c in result["cases"])
