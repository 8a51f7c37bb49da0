"""The model resolver: default, HF folder, GGUF file, LoRA adapter over its base, unreachable hub."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from selfprompt.errors import ModelNotFoundError
from selfprompt.models import ADAPTER_BASE_FILE, load_causal_lm, load_tokenizer, resolve_model

from conftest import free_port


def test_default_resolves_to_packaged_gguf_and_trainable_folder(default_model):
    assert default_model.kind == "default" and default_model.name == "SmolLM2-135M-Instruct"
    assert Path(default_model.gguf_path).is_file() and default_model.gguf_path.endswith(".gguf")
    folder = Path(default_model.transformers_path())
    config = json.loads((folder / "config.json").read_text())
    # The GGUF quantizer state is cleared, so the converted folder can be trained and saved.
    assert "quantization_config" not in config
    assert folder.name.startswith("SmolLM2-135M-Instruct") and (folder / "tokenizer_config.json").exists()
    assert resolve_model("default").transformers_path() == str(folder)  # cached, not converted again


def test_hf_folder_and_gguf_file(default_model):
    folder = resolve_model(default_model.transformers_path())
    assert folder.kind == "hf-folder" and folder.hf_path == default_model.transformers_path()
    with pytest.raises(ModelNotFoundError, match="GGUF"):
        folder.require_gguf()
    gguf = resolve_model(default_model.gguf_path)
    assert gguf.kind == "gguf" and gguf.require_gguf() == default_model.gguf_path
    # Same file, same cached conversion.
    assert gguf.transformers_path() == default_model.transformers_path()


def test_bad_paths_name_the_problem(tmp_path):
    with pytest.raises(ModelNotFoundError, match="model file '.*missing.gguf' not found"):
        resolve_model(str(tmp_path / "missing.gguf"))
    with pytest.raises(ModelNotFoundError, match="config.json"):
        resolve_model(str(tmp_path))
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(ModelNotFoundError, match="neither a GGUF file nor a folder"):
        resolve_model(str(tmp_path / "notes.txt"))


@pytest.mark.parametrize(
    "spec", ["runs/sp", "./sp", "../sp", "~/no-such-model-folder", "runs/sp/model", "sp.gguf", "my model"]
)
def test_a_missing_path_is_reported_as_a_path_not_a_hub_id(tmp_path, monkeypatch, spec):
    (tmp_path / "runs").mkdir()  # `runs/sp` in a project that has a runs/ folder is a path, not org/name
    monkeypatch.chdir(tmp_path)
    # The hub is unreachable, so a spec taken for a hub id would fail with the hub message instead.
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ModelNotFoundError) as err:
        resolve_model(spec)
    message = str(err.value)
    assert f"'{spec}' not found" in message and ("model file" if spec.endswith(".gguf") else "model folder") in message
    assert "Hub" not in message and "HF_TOKEN" not in message


@pytest.mark.slow
def test_lora_adapter_loads_over_its_base(default_model, tmp_path):
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model

    base = load_causal_lm(default_model)
    tokenizer = load_tokenizer(default_model)
    ids = tokenizer("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        base_logits = base(**ids).logits
    lora = get_peft_model(base, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():  # make the adapter change the output, so loading it is observable
        for name, param in lora.named_parameters():
            if "lora_B" in name:
                param.fill_(0.01)
        tuned_logits = lora(**ids).logits
    assert not torch.allclose(tuned_logits, base_logits)
    lora.save_pretrained(tmp_path / "adapter")

    # peft records the base as the folder transformers loaded.
    adapter = resolve_model(str(tmp_path / "adapter"))
    assert adapter.kind == "adapter" and adapter.base.kind == "hf-folder"
    assert adapter.transformers_path() == default_model.transformers_path()
    loaded = load_causal_lm(adapter)
    assert isinstance(loaded, PeftModel)
    with torch.no_grad():
        assert torch.allclose(loaded(**ids).logits, tuned_logits, atol=1e-4)

    # Our trainer's marker names the base as the user spelled it, and wins.
    (tmp_path / "adapter" / ADAPTER_BASE_FILE).write_text(json.dumps({"base_model": "default"}))
    marked = resolve_model(str(tmp_path / "adapter"))
    assert marked.base.kind == "default" and marked.gguf_path is None


def peft_adapter_folder(folder: Path, target_modules: list[str], hash_seed: int) -> bytes:
    """An adapter folder whose adapter_config.json peft itself wrote, in a process with the given string-hash
    seed (peft keeps target_modules as a set: the seed decides the order it writes); returns the config's bytes."""
    code = (
        "import sys; from peft import LoraConfig; "
        "LoraConfig(r=2, lora_alpha=4, target_modules=sys.argv[2].split(',')).save_pretrained(sys.argv[1])"
    )
    env = {**os.environ, "PYTHONHASHSEED": str(hash_seed)}
    subprocess.run([sys.executable, "-c", code, str(folder), ",".join(target_modules)], env=env, check=True)
    (folder / "adapter_model.safetensors").write_bytes(b"the same weights in every folder")
    (folder / ADAPTER_BASE_FILE).write_text(json.dumps({"base_model": "default"}))
    return (folder / "adapter_config.json").read_bytes()


def test_an_adapter_id_does_not_depend_on_the_order_peft_wrote_its_target_modules(default_model, tmp_path):
    modules = ["q_proj", "k_proj", "v_proj", "o_proj"]
    first = peft_adapter_folder(tmp_path / "a", modules, hash_seed=1)
    second = peft_adapter_folder(tmp_path / "b", modules, hash_seed=2)
    order = [json.loads(config)["target_modules"] for config in (first, second)]
    assert order[0] != order[1] and sorted(order[0]) == sorted(order[1])  # two identical trainings, other bytes
    a, b = resolve_model(str(tmp_path / "a")), resolve_model(str(tmp_path / "b"))
    assert a.kind == b.kind == "adapter"
    assert a.content_hash == b.content_hash and a.model_id.split("@")[1] == b.model_id.split("@")[1]
    # Other target modules are another model.
    peft_adapter_folder(tmp_path / "c", ["q_proj", "v_proj"], hash_seed=1)
    assert resolve_model(str(tmp_path / "c")).content_hash != a.content_hash


def test_unreachable_hub_says_how_to_pass_a_local_path():
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env["HF_ENDPOINT"] = f"http://127.0.0.1:{free_port()}"  # nothing listens there: fails fast
    code = "from selfprompt.models import resolve_model; resolve_model('selfprompt-test/no-such-model')"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("selfprompt.errors.ModelNotFoundError")
    assert "selfprompt-test/no-such-model" in last and "--model /path/to/folder" in last
    assert "No local folder 'selfprompt-test/no-such-model' exists either" in last
