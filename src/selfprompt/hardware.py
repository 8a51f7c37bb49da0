"""What the machine is, and every automatic choice that depends on it.

CPUs of the same cloud instance type differ: one has native bf16 (AVX-512 BF16 or AMX on x86,
the BF16 extension on Arm), the next only AVX2, where a bf16 matrix product falls back to a
scalar path ~50x slower than fp32 (measured: 1.2 against 60 GFLOP/s on an AVX2-only AMD EPYC).
So `auto` is decided from what the machine reports, and every decision is returned with the
facts it was based on, so that it can be logged and written into the run's manifest.

Facts come from torch (the ISA level its kernels dispatch to, whether oneDNN has bf16 kernels)
and from the kernel (/proc/cpuinfo flags). Both honour the standard overrides, which is how to
reproduce an AVX2-only machine on a newer one:

    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 selfprompt train ...
"""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

Precision = Literal["bf16", "fp16", "fp32"]

# /proc/cpuinfo flags that mean bf16 arithmetic in hardware (x86: AVX-512 BF16, AMX; Arm: BF16).
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")
# Flags worth keeping in a manifest: enough to tell which kernels a figure could have used.
REPORTED_FLAGS = (
    "avx",
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx_vnni",
    *NATIVE_BF16_FLAGS,
    "amx_tile",
    "asimd",
    "sve",
)
# Environment knobs that change which kernels run; recorded so a figure can be reproduced.
KERNEL_ENV = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_CORETYPE")


@dataclass(frozen=True)
class CpuFacts:
    """The CPU as torch and the kernel report it.

    model_name: /proc/cpuinfo "model name" (platform.processor() elsewhere).
    capability: the ISA level torch's CPU kernels dispatch to ("AVX512", "AVX2", "DEFAULT", ...).
    onednn_bf16: oneDNN has bf16 kernels here (True on AVX-512 even where they are emulated).
    bf16_flags: the native-bf16 flags the kernel reports (empty: no bf16 hardware).
    native_bf16: bf16 matrix products run in hardware: oneDNN has bf16 kernels AND the CPU has a
        native-bf16 flag. Under ONEDNN_MAX_CPU_ISA=AVX2 this is False even on a bf16 CPU.
    cores: CPUs this process may run on (scheduler affinity, not the host's total).
    torch_threads: threads torch's intra-op pool uses.
    """

    model_name: str
    arch: str
    capability: str
    onednn_bf16: bool
    bf16_flags: tuple[str, ...]
    native_bf16: bool
    cores: int
    torch_threads: int
    flags: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        bf16 = "native bf16" if self.native_bf16 else "no native bf16"
        return f"{self.model_name} ({self.arch}, {self.capability}, {bf16}, {self.cores} cores)"


@dataclass(frozen=True)
class GpuFacts:
    name: str
    count: int
    bf16: bool
    capability: str  # CUDA compute capability, "9.0"


@dataclass(frozen=True)
class Decision:
    """One automatic choice: what was asked, what was chosen, and why (facts included)."""

    knob: str
    requested: Any
    resolved: Any
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def model_decisions(model: Any) -> dict[str, dict[str, Any]]:
    """The choices torch and transformers made for a loaded model on this machine: attention kernel, threads.

    Returns {knob: Decision.as_dict()} for "attn_implementation" and "threads" (for manifests)."""
    import torch

    return {
        "attn_implementation": Decision(
            "attn_implementation",
            "transformers default",
            getattr(getattr(model, "config", None), "_attn_implementation", None),
            "transformers picks sdpa where torch has it, else eager",
        ).as_dict(),
        "threads": Decision(
            "threads",
            "torch default",
            torch.get_num_threads(),
            f"torch intra-op threads on {cpu_facts().cores} usable cores"
            f" (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')})",
        ).as_dict(),
    }


def _cpuinfo() -> tuple[str, set[str]]:
    name, flags = "", set()
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return platform.processor() or platform.machine(), flags
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key == "model name" and not name:
            name = value.strip()
        elif key in ("flags", "features") and not flags:  # x86 "flags", Arm "Features"
            flags = set(value.split())
    return name or platform.processor() or platform.machine(), flags


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _onednn_bf16() -> bool:
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # builds without oneDNN
        return False


@lru_cache(maxsize=1)
def cpu_facts() -> CpuFacts:
    """The CPU this process runs on (cached: the answer does not change within a process)."""
    import torch

    name, flags = _cpuinfo()
    bf16_flags = tuple(f for f in NATIVE_BF16_FLAGS if f in flags)
    onednn = _onednn_bf16()
    return CpuFacts(
        model_name=name,
        arch=platform.machine(),
        capability=torch.backends.cpu.get_cpu_capability(),
        onednn_bf16=onednn,
        bf16_flags=bf16_flags,
        native_bf16=onednn and bool(bf16_flags),
        cores=usable_cores(),
        torch_threads=torch.get_num_threads(),
        flags=tuple(f for f in REPORTED_FLAGS if f in flags),
        env={k: os.environ[k] for k in KERNEL_ENV if k in os.environ},
    )


def gpu_facts() -> GpuFacts | None:
    import torch

    if not torch.cuda.is_available():
        return None
    major, minor = torch.cuda.get_device_capability(0)
    return GpuFacts(
        name=torch.cuda.get_device_name(0),
        count=torch.cuda.device_count(),
        bf16=torch.cuda.is_bf16_supported(),
        capability=f"{major}.{minor}",
    )


def machine_facts() -> dict[str, Any]:
    """CPU and GPU facts as plain data, for manifests and benchmark results."""
    gpu = gpu_facts()
    return {"cpu": asdict(cpu_facts()), "gpu": asdict(gpu) if gpu else None}


def resolve_precision(requested: str, cpu: CpuFacts, gpu: GpuFacts | None) -> Decision:
    """Turn a precision setting ('auto', 'bf16', 'fp16', 'fp32') into the one to use.

    auto: on a GPU, bf16 where it has it, else fp16; on a CPU, bf16 autocast only where bf16 is
    native (see CpuFacts.native_bf16), else fp32 (bf16 there is emulated, ~50x slower).
    An explicit choice is kept; the reason then says so, with a warning where it will be slow.
    Raises ValueError for an unknown value, and for fp16 without a GPU (CPU autocast has no fp16
    training path).
    """
    if requested not in ("auto", "bf16", "fp16", "fp32"):
        raise ValueError(f"unknown precision '{requested}'; valid: auto, bf16, fp16, fp32")
    where = f"GPU {gpu.name} (bf16 {'yes' if gpu.bf16 else 'no'})" if gpu else f"CPU {cpu.describe()}"
    if requested == "fp16" and gpu is None:
        raise ValueError("precision 'fp16' needs a GPU; use bf16 or fp32 on CPU")
    if requested != "auto":
        slow = gpu is None and requested == "bf16" and not cpu.native_bf16
        warning = (
            "; WARNING: this CPU has no native bf16, expect bf16 to run many times slower than fp32" if slow else ""
        )
        return Decision("precision", requested, requested, f"set explicitly on {where}{warning}")
    if gpu is not None:
        choice: Precision = "bf16" if gpu.bf16 else "fp16"
        return Decision(
            "precision", "auto", choice, f"{where}: {'bf16 supported' if gpu.bf16 else 'no bf16, fp16 mixed precision'}"
        )
    if cpu.native_bf16:
        return Decision(
            "precision", "auto", "bf16", f"{where}: native bf16 ({', '.join(cpu.bf16_flags)}), bf16 autocast"
        )
    if cpu.bf16_flags and not cpu.onednn_bf16:
        why = "the CPU has bf16 but oneDNN's bf16 kernels are off (ONEDNN_MAX_CPU_ISA?)"
    elif cpu.onednn_bf16:
        why = "oneDNN would emulate bf16 (no AVX-512 BF16 or AMX flag)"
    else:
        why = "no bf16 hardware"
    return Decision("precision", "auto", "fp32", f"{where}: {why}; fp32")


# --- generation batch size ------------------------------------------------------------------------
# Tokens one row of a batch is planned to hold in the KV cache: prompt plus answer of a typical eval,
# annotation or judge request. Longer rows still run; they take more memory than planned.
PLAN_TOKENS_PER_ROW = 1024
# Share of the memory left after the model is loaded that generation may plan for: on a GPU the rest of
# free VRAM (activations, allocator slack); on a CPU a quarter of MemAvailable, as the page cache, the
# tokenizer and other processes live there too.
GPU_MEMORY_SHARE = 0.5
CPU_MEMORY_SHARE = 0.25
# More rows than this stop paying on a CPU: a decoding step is compute-bound there once the batch is past a
# few dozen rows, and a long batch delays the cache appends and progress of the first items. On a GPU the
# cap is memory alone, bounded to keep padding waste of mixed-length requests reasonable.
CPU_MAX_BATCH = 64
GPU_MAX_BATCH = 256


def kv_bytes_per_token(config: Any, dtype_bytes: int) -> int:
    """Bytes the KV cache holds per token of one row: 2 (keys, values) x layers x KV heads x head dim x dtype.

    Reads a transformers config (`get_text_config()` where the model has one); grouped-query attention is
    counted by its KV heads. Raises ValueError when the config lacks the layer or head counts."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    layers = getattr(text, "num_hidden_layers", None)
    heads = getattr(text, "num_attention_heads", None)
    if not layers or not heads:
        raise ValueError("model config has no num_hidden_layers / num_attention_heads")
    kv_heads = getattr(text, "num_key_value_heads", None) or heads
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // heads
    return 2 * layers * kv_heads * head_dim * dtype_bytes


def available_memory_bytes(device: str) -> tuple[int, str]:
    """(bytes free for generation's planning, where the figure comes from) on `device` ("cuda..." or "cpu")."""
    if device.startswith("cuda"):
        import torch

        free, _total = torch.cuda.mem_get_info()
        return int(free * GPU_MEMORY_SHARE), f"{GPU_MEMORY_SHARE:.0%} of {free / 2**30:.1f} GiB free VRAM"
    available = _mem_available()
    return int(available * CPU_MEMORY_SHARE), f"{CPU_MEMORY_SHARE:.0%} of {available / 2**30:.1f} GiB MemAvailable"


def _mem_available() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")  # free pages: a lower bound


def generation_batch_size(
    model: Any, device: str, requested: int | None, memory_bytes: int | None = None, source: str = ""
) -> Decision:
    """Rows per batch for in-process generation: `requested` if set, else chosen from memory and the model.

    Rule: rows = memory budget // (KV bytes per token x PLAN_TOKENS_PER_ROW + one row of fp32 logits), at
    least 1, at most CPU_MAX_BATCH on a CPU or GPU_MAX_BATCH on a GPU. The budget is GPU_MEMORY_SHARE of
    free VRAM or CPU_MEMORY_SHARE of MemAvailable, measured after the model is loaded (or `memory_bytes`,
    with `source` saying where it came from). The decision's reason carries the figures."""
    if requested is not None:
        return Decision("batch_size", requested, requested, "set explicitly")
    import torch

    if memory_bytes is None:
        memory_bytes, source = available_memory_bytes(device)
    dtype = getattr(model, "dtype", torch.float32)
    per_token = kv_bytes_per_token(model.config, torch.empty((), dtype=dtype).element_size())
    vocab = getattr(model.config.get_text_config(), "vocab_size", 0) or 0
    per_row = per_token * PLAN_TOKENS_PER_ROW + vocab * 4
    cap = GPU_MAX_BATCH if device.startswith("cuda") else CPU_MAX_BATCH
    rows = max(1, min(cap, memory_bytes // per_row))
    return Decision(
        "batch_size",
        "auto",
        int(rows),
        f"{source} = {memory_bytes / 2**20:.0f} MiB // ({per_token} B KV per token x {PLAN_TOKENS_PER_ROW} tokens"
        f" + {vocab}-token logits) per row, capped at {cap} on {'GPU' if device.startswith('cuda') else 'CPU'}",
    )
