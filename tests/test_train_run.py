"""Real training runs on the embedded default model: acceptance, parity, resume, merge, 2-process DDP.

LIMA-Role rows here carry templated role prompts (selfprompt.train.template_roles) built from the
real LIMA questions: test data, since the teacher-annotated LIMA-Role is built by `annotate`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from selfprompt.format import DEFAULT_FORMAT
from selfprompt.jsonl import write_records
from selfprompt.train.config import load_config
from selfprompt.train.data import order_rows
from selfprompt.train.recipe import is_complete_checkpoint, run
from selfprompt.train.template_roles import lima_template_roles

REPO = Path(__file__).resolve().parents[1]
SELFPROMPT = str(Path(sys.executable).parent / "selfprompt")
CPU_RECIPE = REPO / "recipes" / "smollm2-135m-lora-cpu.yaml"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def role_file(data_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("lima_role") / "lima-role.jsonl"
    write_records(path, lima_template_roles(data_dir / "lima" / "train.jsonl"))
    return path


def train(role_file, out, *overrides):
    cfg = load_config(CPU_RECIPE, [f"data={role_file}", f"output_dir={out}", *overrides])
    return cfg, run(cfg, resume="auto")


@pytest.fixture(scope="module")
def runs(role_file, tmp_path_factory):
    """The CPU recipe as the demo runs it (64 shortest rows), in both modes."""
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for mode in ("self-prompt", "baseline"):
        _, result = train(role_file, root / mode, f"mode={mode}", "save_steps=1000")
        assert result.completed
        out[mode] = result
    return out


def held_out_questions(role_file, trained_ids, n=10):
    from selfprompt.jsonl import read_records
    from selfprompt.records import RoleExample

    rows = order_rows(read_records(role_file, RoleExample), "shortest")
    unseen = [r for r in rows[100:] if r.id not in trained_ids]
    return [r.question for r in unseen[:n]]


def generate(model_dir, questions, max_tokens=64):
    from selfprompt.generate.backends import get_backend
    from selfprompt.generate.backends.base import ChatRequest, Sampling
    from selfprompt.records import Message

    backend = get_backend("hf", model=str(model_dir), batch_size=len(questions))
    try:
        requests = [
            ChatRequest(
                messages=[Message(role="user", content=q)], sampling=Sampling(max_tokens=max_tokens, temperature=0.0)
            )
            for q in questions
        ]
        return [r.text for r in backend.generate(requests)]
    finally:
        backend.close()


def test_self_prompt_model_writes_roles_on_unseen_questions_and_baseline_does_not(runs, role_file):
    questions = held_out_questions(role_file, set(runs["self-prompt"].data.row_ids))
    assert len(questions) == 10
    tuned = [DEFAULT_FORMAT.parse(t) for t in generate(runs["self-prompt"].output_dir, questions)]
    assert sum(p.held for p in tuned) >= 9, [p.problem for p in tuned]
    assert all(p.role for p in tuned if p.held)
    baseline = generate(runs["baseline"].output_dir, questions)
    assert not any(DEFAULT_FORMAT.open_tag in t for t in baseline)
    assert sum(DEFAULT_FORMAT.parse(t).held for t in baseline) == 0


def test_self_prompt_condition_gives_the_role_its_own_budget(runs, role_file):
    """max_tokens is the answer's budget in every condition: 8 tokens would not even close a role, yet
    the tuned model's roles close and answers follow (the role gets SELF_PROMPT_ROLE_ALLOWANCE)."""
    from selfprompt.generate.backends import get_backend
    from selfprompt.generate.backends.base import Sampling
    from selfprompt.generate.conditions import answer_questions

    questions = held_out_questions(role_file, set(runs["self-prompt"].data.row_ids))[:4]
    backend = get_backend("hf", model=str(runs["self-prompt"].output_dir), batch_size=4)
    try:
        outs = answer_questions(backend, questions, "self-prompt", Sampling(max_tokens=8, temperature=0.0))
    finally:
        backend.close()
    held = [o for o in outs if o.format_held]
    assert len(held) >= 3 and all(o.role and o.answer for o in held), [o.raw for o in outs]
    assert all(o.usage.completion_tokens > 8 for o in held)


def test_baseline_and_self_prompt_differ_only_in_mode(runs):
    summaries, manifests = {}, {}
    for mode, result in runs.items():
        summaries[mode] = json.loads((result.output_dir / "train_summary.json").read_text())
        manifests[mode] = json.loads((result.output_dir / "manifest.json").read_text())
    sp, base = summaries["self-prompt"], summaries["baseline"]
    assert sp["row_ids"] == base["row_ids"] and len(sp["row_ids"]) == 64
    assert sp["parity_sha256"] == base["parity_sha256"]
    assert sp["data"]["row_ids_sha256"] == base["data"]["row_ids_sha256"]
    assert sp["data"]["trained_tokens"] > base["data"]["trained_tokens"]  # the role prompts
    assert manifests["self-prompt"]["data"] == manifests["baseline"]["data"]  # same file, same sha256
    diff = {k for k, v in manifests["self-prompt"]["config"].items() if manifests["baseline"]["config"][k] != v}
    assert diff == {"mode", "output_dir"}
    m = manifests["self-prompt"]
    assert m["seed"] == 42 and "torch" in m["versions"] and "trl" in m["versions"] and "git_commit" in m
    # The CPU a figure came from, and the precision `auto` chose on it with its reason.
    from selfprompt.hardware import cpu_facts

    assert m["hardware"]["cpu"]["capability"] == cpu_facts().capability and m["hardware"]["cpu"]["cores"] >= 1
    precision = m["train"]["decisions"]["precision"]
    assert precision["requested"] == "auto"
    assert precision["resolved"] == ("bf16" if cpu_facts().native_bf16 else "fp32") and precision["reason"]
    for result in runs.values():
        out = result.output_dir
        assert (out / "adapter_config.json").exists() and (out / "tokenizer_config.json").exists()
        assert json.loads((out / "selfprompt_base.json").read_text()) == {"base_model": "default"}
        lines = (out / "loss.csv").read_text().splitlines()
        assert lines[0].startswith("step,") and len(lines) - 1 == result.global_step
        assert (out / "loss.png").stat().st_size > 1000


def test_merge_loads_with_plain_transformers_and_selfprompt_ask(runs, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from typer.testing import CliRunner

    from selfprompt.cli import app
    from selfprompt.models import load_causal_lm, resolve_model
    from selfprompt.train.merge import merge_adapter

    adapter = runs["self-prompt"].output_dir
    merged_dir = merge_adapter(adapter, tmp_path / "merged")
    merged = AutoModelForCausalLM.from_pretrained(merged_dir)
    tokenizer = AutoTokenizer.from_pretrained(merged_dir)
    assert "generation" not in tokenizer.chat_template.replace("add_generation_prompt", "")
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Name a prime number."}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )["input_ids"]
    with torch.no_grad():
        reference = load_causal_lm(resolve_model(str(adapter))).eval()(ids).logits
        assert torch.allclose(merged.eval()(ids).logits, reference, atol=1e-3)

    questions = ["How do I boil an egg?", "What is the capital of Peru?"]
    result = CliRunner().invoke(
        app,
        ["ask", "--condition", "self-prompt", "--model", str(merged_dir), "--json", "--max-tokens", "64", *questions],
    )
    assert result.exit_code == 0, result.output
    outputs = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(outputs) == 2 and all(o["format_held"] and o["role"] for o in outputs)


def test_kill_minus_9_then_resume_auto_matches_uninterrupted_run(role_file, tmp_path):
    from selfprompt.errors import ConfigError

    tiny = [
        "max_rows=4",
        "per_device_batch_size=1",
        "gradient_accumulation_steps=1",
        "max_steps=4",
        "save_steps=2",
        "max_length=112",
    ]
    _, full = train(role_file, tmp_path / "full", *tiny)
    assert full.completed and full.global_step == 4

    out = tmp_path / "killed"
    cmd = [SELFPROMPT, "train", "--config", str(CPU_RECIPE), f"data={role_file}", f"output_dir={out}", *tiny]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not is_complete_checkpoint(out / "checkpoint-2") and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL and not (out / "adapter_config.json").exists()
    # What a kill during the next save leaves behind: a checkpoint without a readable trainer state.
    torn = out / "checkpoint-3"
    torn.mkdir(exist_ok=True)
    (torn / "trainer_state.json").write_text('{"global_step": 3, "log_hi')

    cfg = load_config(CPU_RECIPE, [f"data={role_file}", f"output_dir={out}", *tiny])
    with pytest.raises(ConfigError, match="--resume auto"):
        run(cfg, resume=None)  # never silently overwrite a run in progress
    resumed = run(cfg, resume="auto")
    assert resumed.completed and resumed.global_step == 4
    assert resumed.final_loss == pytest.approx(full.final_loss, rel=1e-4, abs=1e-5)
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["resumed_from"].endswith("checkpoint-2")


def test_two_cpu_processes_end_with_identical_weights(role_file, tmp_path):
    from conftest import free_port

    out = tmp_path / "ddp"
    cmd = [
        # accelerate 1.x runs `--cpu --num_processes 2` as ONE process unless mpirun is installed; its
        # torchrun launcher (`--multi_gpu`) starts two processes, which find no CUDA and use gloo DDP.
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--main_process_port",
        str(free_port()),
        "-m",
        "selfprompt.train",
        "--config",
        str(CPU_RECIPE),
        f"data={role_file}",
        f"output_dir={out}",
        "max_rows=4",
        "per_device_batch_size=1",
        "gradient_accumulation_steps=1",
        "max_steps=2",
        "max_length=112",
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    hashes = [(out / f"params_sha256.rank{r}.txt").read_text() for r in (0, 1)]
    assert hashes[0] == hashes[1]
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["num_processes"] == 2 and summary["global_step"] == 2


@pytest.mark.gpu
def test_qlora_trains_on_a_gpu(role_file, tmp_path):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("QLoRA needs a CUDA GPU")
    pytest.importorskip("bitsandbytes")
    _, result = train(
        role_file, tmp_path / "qlora", "method=qlora", "max_rows=8", "max_steps=2", "per_device_batch_size=2"
    )
    assert result.completed and (tmp_path / "qlora" / "adapter_config.json").exists()


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


@pytest.mark.multigpu
@pytest.mark.parametrize("accelerate_config", ["fsdp.yaml", "deepspeed-zero3.yaml"])
def test_sharded_full_fine_tune_on_two_gpus(accelerate_config, role_file, tmp_path):
    """The shipped multi-GPU configs on the default model: not run on the CPU machines of CI."""
    from conftest import free_port

    if _gpu_count() < 2:
        pytest.skip("needs 2 or more CUDA GPUs")
    if accelerate_config.startswith("deepspeed"):
        pytest.importorskip("deepspeed")
    out = tmp_path / accelerate_config.split(".")[0]
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(REPO / "recipes" / "accelerate" / accelerate_config),
        "--num_processes",
        "2",
        "--main_process_port",
        str(free_port()),
        "-m",
        "selfprompt.train",
        "--config",
        str(CPU_RECIPE),
        f"data={role_file}",
        f"output_dir={out}",
        "method=full",
        "max_rows=8",
        "per_device_batch_size=1",
        "max_steps=2",
        "max_length=112",
    ]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["num_processes"] == 2 and summary["global_step"] == 2
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(out)  # the gathered full model loads with plain transformers
