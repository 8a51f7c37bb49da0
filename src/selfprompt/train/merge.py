"""Merge a LoRA adapter into its base: a plain model folder for transformers, vLLM, llama.cpp's converter."""

from __future__ import annotations

import shutil
from pathlib import Path

from selfprompt.errors import ConfigError, ModelNotFoundError
from selfprompt.manifest import MANIFEST_NAME, write_manifest
from selfprompt.models import load_tokenizer, resolve_model

# Copied beside the merged weights so the folder keeps its training records.
RECORD_FILES = ("train_summary.json", "loss.csv", "loss.png")


def merge_adapter(adapter: str | Path, out: str | Path, base: str | None = None) -> Path:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    resolved = resolve_model(str(adapter), base=base)
    if resolved.kind != "adapter":
        raise ModelNotFoundError(f"'{adapter}' is not a LoRA adapter folder (no adapter_config.json)")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out} exists and is not empty; merge writes a new folder")
    model = AutoModelForCausalLM.from_pretrained(resolved.transformers_path(), dtype=torch.float32)
    merged = PeftModel.from_pretrained(model, resolved.adapter_path).merge_and_unload()
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    merged.save_pretrained(tmp)
    load_tokenizer(resolved).save_pretrained(tmp)  # the adapter's tokenizer: its inference chat template
    for name in RECORD_FILES:
        if (Path(resolved.adapter_path) / name).exists():
            shutil.copy2(Path(resolved.adapter_path) / name, tmp / name)
    if (Path(resolved.adapter_path) / MANIFEST_NAME).exists():
        shutil.copy2(Path(resolved.adapter_path) / MANIFEST_NAME, tmp / "train_manifest.json")
    write_manifest(
        tmp, stage="merge", config={"adapter": str(adapter), "base": resolved.base.spec if resolved.base else None}
    )
    if out.exists():
        out.rmdir()
    tmp.rename(out)
    return out
