"""Training configuration: one pydantic model, every knob documented where it is declared.

A recipe YAML file sets these fields; `key=value` overrides on the command line come after it
(values parsed as YAML: `epochs=3`, `lora_target_modules=[q_proj,v_proj]`). An unknown key is
an error naming the key, never silently ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from selfprompt.errors import ConfigError, error_field

Mode = Literal["self-prompt", "baseline"]
Method = Literal["lora", "qlora", "full"]

# Fields that may differ between a self-prompt run and its baseline without breaking parity.
NON_PARITY_FIELDS = ("mode", "output_dir", "stop_after_steps", "tensorboard")


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # --- what to train -------------------------------------------------------------------
    model: str = Field(
        default="default",
        description="Model spec for selfprompt.models.resolve_model: 'default', a folder, a GGUF file or a hub id.",
    )
    data: str = Field(description="LIMA-Role JSONL file (selfprompt.records.RoleExample rows). $VARS are expanded.")
    mode: Mode = Field(
        default="self-prompt",
        description="'self-prompt': the assistant turn is role prompt + answer; 'baseline': the answer alone.",
    )
    format: str = Field(
        default="role-tags-v1", description="Self-prompt format (selfprompt.format) used to render role + answer."
    )
    output_dir: str = Field(description="Where checkpoints, the final model, manifest and loss curve go.")

    # --- which rows ------------------------------------------------------------------------
    include_statuses: list[str] = Field(
        default=["ok"],
        description="Annotation statuses kept, in BOTH modes, so baseline and self-prompt see the same rows.",
    )
    row_order: Literal["file", "shortest"] = Field(
        default="file",
        description="'file' keeps file order; 'shortest' takes the shortest rows first (by characters of question+role+answer, the same in both modes).",
    )
    max_rows: int | None = Field(
        default=None, ge=1, description="Use at most this many rows (after exclusions); None uses all."
    )
    system_prompt: str | None = Field(
        default=None, description="System message for every example; None lets the chat template use its default."
    )

    # --- tokenization ----------------------------------------------------------------------
    chat_template: str = Field(
        default="auto",
        description="'auto' (match the tokenizer's template), or a shipped pair: smollm2, llama2, mistral.",
    )
    max_length: int = Field(
        default=1024,
        ge=16,
        description="Longest example in tokens; longer examples are excluded and reported (never cut).",
    )
    packing: bool = Field(
        default=False,
        description="Pack examples into max_length rows (TRL BFD packing; implies padding-free attention).",
    )
    padding_free: bool = Field(
        default=False,
        description="Concatenate a batch into one row with position ids instead of padding: no pad compute on GPUs with flash attention; slower than padding on CPU (sdpa), measured here.",
    )

    # --- method ----------------------------------------------------------------------------
    method: Method = Field(default="lora", description="'lora', 'qlora' (4-bit base, CUDA only) or 'full' fine-tuning.")
    lora_r: int = Field(default=16, ge=1, description="LoRA rank.")
    lora_alpha: int = Field(default=32, ge=1, description="LoRA scaling numerator (scale = alpha / r).")
    lora_dropout: float = Field(default=0.05, ge=0.0, lt=1.0, description="Dropout on the LoRA input.")
    lora_target_modules: str | list[str] = Field(
        default="all-linear", description="Modules that get adapters: 'all-linear' or a list of names."
    )
    gradient_checkpointing: bool = Field(
        default=False, description="Recompute activations in backward: less memory, ~30% slower."
    )

    # --- optimisation ----------------------------------------------------------------------
    epochs: float = Field(default=3.0, gt=0, description="Passes over the rows (ignored when max_steps > 0).")
    max_steps: int = Field(default=-1, description="Optimizer steps to run; -1 derives them from epochs.")
    per_device_batch_size: int = Field(
        default=4,
        ge=1,
        description="Examples per device per micro-batch. Activation memory grows with it (the CPU recipe's LoRA run "
        "holds ~2.3 MB per token until backward); padding is to the longest example of the micro-batch.",
    )
    gradient_accumulation_steps: int = Field(
        default=1,
        ge=1,
        description="Micro-batches per optimizer step; global batch = this x per_device x processes. The loss stays "
        "the mean over the step's assistant tokens whatever the split (Trainer passes the step's token count).",
    )
    learning_rate: float = Field(default=2e-4, gt=0, description="Peak learning rate.")
    lr_scheduler: str = Field(
        default="linear", description="transformers scheduler name: linear, cosine, constant, ..."
    )
    warmup_steps: float = Field(
        default=0,
        ge=0,
        description="Linear warmup: an integer number of steps, or a float in [0, 1) as a fraction of all steps.",
    )
    weight_decay: float = Field(default=0.0, ge=0.0, description="AdamW decoupled weight decay.")
    adam_beta1: float = Field(default=0.9, description="AdamW beta1.")
    adam_beta2: float = Field(default=0.999, description="AdamW beta2 (LIMA used 0.95).")
    max_grad_norm: float = Field(default=1.0, description="Gradient clipping norm.")
    precision: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        default="auto",
        description="'auto': on GPU bf16 where supported, else fp16; on CPU bf16 autocast only where bf16 is native (AVX-512 BF16, AMX, Arm BF16), else fp32 (emulated bf16 is ~50x slower). The choice and its reason go into the manifest.",
    )
    seed: int = Field(default=42, description="Seed for data order, dropout and LoRA init.")

    # --- bookkeeping -----------------------------------------------------------------------
    logging_steps: int = Field(default=1, ge=1, description="Log loss every N steps (loss.csv, loss.png).")
    save_steps: int = Field(default=50, ge=1, description="Checkpoint every N steps (resume point for --resume auto).")
    save_total_limit: int | None = Field(default=2, description="Keep only the newest N checkpoints; None keeps all.")
    tensorboard: bool = Field(
        default=False, description="Also log to TensorBoard under output_dir/runs (needs the tensorboard extra)."
    )
    stop_after_steps: int | None = Field(
        default=None,
        ge=1,
        description="Stop cleanly after this many steps, with a checkpoint, as if killed; for time-boxed runs and resume tests.",
    )

    def resolved_data(self) -> Path:
        return Path(os.path.expandvars(os.path.expanduser(self.data)))

    def resolved_output_dir(self) -> Path:
        return Path(os.path.expandvars(os.path.expanduser(self.output_dir)))

    def parity_dict(self) -> dict[str, Any]:
        """The config minus what may differ between a run and its baseline."""
        return {k: v for k, v in self.model_dump().items() if k not in NON_PARITY_FIELDS}

    def parity_sha256(self) -> str:
        return hashlib.sha256(json.dumps(self.parity_dict(), sort_keys=True).encode()).hexdigest()


def load_config(path: str | Path | None, overrides: list[str] = ()) -> TrainConfig:
    """The recipe file, then `key=value` overrides (values read as YAML). As for every stage (selfprompt.cliconfig),
    `key=` means None where the field allows it, and an empty value is refused where it does not; an explicit
    `""` (recipe or override) for a field that allows None stays "" (`system_prompt: ""`: an empty system message)."""
    from selfprompt.cliconfig import allows_none, check_config_path, empty_value, is_empty, parse_override

    raw: dict[str, Any] = {}
    where: dict[str, str] = {}
    source = str(path) if path else "command line"
    if path:
        p = check_config_path(path, "recipe")
        loaded = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{p}: expected a mapping of key: value")
        raw.update(loaded)
        where.update((key, str(p)) for key in loaded)
    bare: set[str] = set()  # keys given as `key=`, with no value text at all
    for item in overrides:
        key, value = parse_override(item)
        raw[key], where[key] = value, f"override '{item}'"
        if not item.partition("=")[2].strip():
            bare.add(key)
        else:
            bare.discard(key)
    for key, value in raw.items():
        if is_empty(value) and key in TrainConfig.model_fields:
            if key in bare or not allows_none(TrainConfig.model_fields[key].annotation):
                raw[key] = empty_value(TrainConfig, key, where[key])
    try:
        return TrainConfig.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        key = error_field(first)
        if first["type"] == "extra_forbidden":
            raise ConfigError(f"{source}: unknown key '{key}'") from None
        raise ConfigError(f"{source}: key '{key}': {first['msg']}") from None
