"""Automatic choices decided from what the machine reports (selfprompt.hardware)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from selfprompt.hardware import CpuFacts, GpuFacts, cpu_facts, machine_facts, resolve_precision


def cpu(**kw) -> CpuFacts:
    base = dict(
        model_name="Test CPU",
        arch="x86_64",
        capability="AVX512",
        onednn_bf16=True,
        bf16_flags=("avx512_bf16",),
        native_bf16=True,
        cores=2,
        torch_threads=2,
    )
    return CpuFacts(**{**base, **kw})


AVX2_EPYC = cpu(model_name="AMD EPYC 7B12", capability="AVX2", onednn_bf16=False, bf16_flags=(), native_bf16=False)
AVX512_NO_BF16 = cpu(model_name="Intel Xeon Skylake", onednn_bf16=True, bf16_flags=(), native_bf16=False)
SAPPHIRE_RAPIDS = cpu(model_name="Intel Xeon Platinum 8480", bf16_flags=("avx512_bf16", "amx_bf16"))


def test_auto_on_a_cpu_without_native_bf16_is_fp32_and_says_why():
    for facts in (AVX2_EPYC, AVX512_NO_BF16):
        d = resolve_precision("auto", facts, None)
        assert d.resolved == "fp32" and d.requested == "auto"
        assert facts.model_name in d.reason and "fp32" in d.reason
    assert "no bf16 hardware" in resolve_precision("auto", AVX2_EPYC, None).reason
    assert "emulate" in resolve_precision("auto", AVX512_NO_BF16, None).reason


def test_auto_on_a_cpu_with_native_bf16_is_bf16():
    d = resolve_precision("auto", SAPPHIRE_RAPIDS, None)
    assert d.resolved == "bf16" and "amx_bf16" in d.reason


def test_bf16_flag_with_onednn_bf16_switched_off_is_fp32():
    # ONEDNN_MAX_CPU_ISA=AVX2 on a bf16 CPU: the flag is there, the kernels are not.
    facts = cpu(onednn_bf16=False, native_bf16=False)
    d = resolve_precision("auto", facts, None)
    assert d.resolved == "fp32" and "ONEDNN_MAX_CPU_ISA" in d.reason


def test_gpu_auto_and_explicit_choices():
    h100 = GpuFacts(name="H100", count=8, bf16=True, capability="9.0")
    v100 = GpuFacts(name="V100", count=1, bf16=False, capability="7.0")
    assert resolve_precision("auto", AVX2_EPYC, h100).resolved == "bf16"
    assert resolve_precision("auto", AVX2_EPYC, v100).resolved == "fp16"
    explicit = resolve_precision("bf16", AVX2_EPYC, None)
    assert explicit.resolved == "bf16" and "WARNING" in explicit.reason
    assert "WARNING" not in resolve_precision("bf16", SAPPHIRE_RAPIDS, None).reason
    assert resolve_precision("fp32", SAPPHIRE_RAPIDS, None).resolved == "fp32"
    with pytest.raises(ValueError, match="needs a GPU"):
        resolve_precision("fp16", SAPPHIRE_RAPIDS, None)
    for bad in ("AUTO", "fp64", ""):
        with pytest.raises(ValueError, match="unknown precision"):
            resolve_precision(bad, SAPPHIRE_RAPIDS, None)


def test_this_machine_reports_consistent_facts():
    facts = cpu_facts()
    assert facts.cores >= 1 and facts.torch_threads >= 1 and facts.capability
    assert facts.native_bf16 == (facts.onednn_bf16 and bool(facts.bf16_flags))
    data = machine_facts()
    json.dumps(data)  # plain data, for manifests
    assert data["cpu"]["model_name"] == facts.model_name


def test_onednn_isa_cap_turns_native_bf16_off():
    """The standard override reproduces an AVX2-only machine: `auto` then chooses fp32."""
    code = (
        "from selfprompt.hardware import cpu_facts, resolve_precision; f = cpu_facts(); "
        "print(f.capability, f.native_bf16, resolve_precision('auto', f, None).resolved)"
    )
    env = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    import os

    out = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["AVX2", "False", "fp32"]


def test_model_decisions_name_the_kernel_and_threads_the_loaded_model_runs_with():
    import types

    import torch

    from selfprompt.hardware import model_decisions

    model = types.SimpleNamespace(config=types.SimpleNamespace(_attn_implementation="sdpa"))
    decisions = model_decisions(model)
    assert decisions["attn_implementation"]["resolved"] == "sdpa"
    assert decisions["threads"]["resolved"] == torch.get_num_threads()
    assert "usable cores" in decisions["threads"]["reason"]
    assert model_decisions(object())["attn_implementation"]["resolved"] is None  # a model without a config
