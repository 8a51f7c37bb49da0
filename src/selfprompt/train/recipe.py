"""Self-prompt tuning (and its plain-LIMA baseline) as one recipe: setup, data, train, save.

One process (CPU or one GPU):

    selfprompt train --config recipes/smollm2-135m-lora-cpu.yaml data=runs/lima-role.jsonl
    selfprompt train --config recipes/smollm2-135m-lora-cpu.yaml mode=baseline output_dir=runs/baseline
    selfprompt train --config recipes/smollm2-135m-lora-cpu.yaml --dry-run 3      # show trained spans, no training
    selfprompt train --config recipes/smollm2-135m-lora-cpu.yaml --resume auto    # continue a killed run

Two CPU processes (real data parallel over gloo; the tests run the torchrun form, since
accelerate starts multi-CPU jobs through mpirun and runs a single process without MPI):

    torchrun --nproc_per_node 2 -m selfprompt.train --config recipes/smollm2-135m-lora-cpu.yaml
    accelerate launch --config_file recipes/accelerate/cpu-2proc.yaml --mpirun_hostfile HOSTFILE \\
        -m selfprompt.train --config recipes/smollm2-135m-lora-cpu.yaml

Eight GPUs on one node (DeepSpeed ZeRO-3 or FSDP):

    accelerate launch --config_file recipes/accelerate/deepspeed-zero3.yaml -m selfprompt.train \\
        --config recipes/mistral-7b-full.yaml
    accelerate launch --config_file recipes/accelerate/fsdp.yaml -m selfprompt.train \\
        --config recipes/llama2-7b-full.yaml

Several nodes: the same command on each node with `--num_machines N --machine_rank R
--main_process_ip HOST --main_process_port PORT` added after `accelerate launch`.

The heavy lifting is TRL's SFTTrainer (data collation, padding-free batches, packing, mixed
precision, distributed wrapping, checkpoints and resume) and peft (LoRA). What this file adds:
the loss mask from the chat template's generation markers (data.py), row parity between modes,
refusing to train on cut or empty examples, and the run's records (manifest, loss curve,
per-rank weight hashes).
"""

from __future__ import annotations

import csv
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from selfprompt.errors import ConfigError
from selfprompt.format import get_format
from selfprompt.hardware import Decision, cpu_facts, gpu_facts, model_decisions, resolve_precision
from selfprompt.jsonl import read_records, write_json
from selfprompt.manifest import write_manifest
from selfprompt.models import ADAPTER_BASE_FILE, ResolvedModel, load_tokenizer, resolve_model
from selfprompt.records import RoleExample
from selfprompt.train.config import TrainConfig
from selfprompt.train.data import PreparedData, prepare_examples, trained_spans
from selfprompt.train.templates import ChatTemplatePair, select_template_pair

console = Console(stderr=True)
TRAIN_SUMMARY = "train_summary.json"
LOSS_CSV = "loss.csv"
LOSS_PNG = "loss.png"


@dataclass
class RunResult:
    output_dir: Path
    completed: bool  # False when stopped early (stop_after_steps): resume with --resume auto
    global_step: int
    final_loss: float | None
    data: PreparedData
    train_seconds: float = 0.0  # trainer.train() wall time (this invocation), from its metrics
    train_cpu_seconds: float = 0.0  # CPU time of this process's threads in trainer.train(): load-independent cost


# ----------------------------------------------------------------------------------------------
# setup
# ----------------------------------------------------------------------------------------------
def setup_tokenizer(cfg: TrainConfig) -> tuple[ResolvedModel, Any, ChatTemplatePair]:
    resolved = resolve_model(cfg.model)
    tokenizer = load_tokenizer(resolved)
    pair = select_template_pair(tokenizer, cfg.chat_template)
    tokenizer.chat_template = pair.original  # what the saved model will use for inference
    return resolved, tokenizer, pair


def decide_precision(cfg: TrainConfig) -> Decision:
    """`precision` resolved on this machine (auto: bf16 only where it is native; see selfprompt.hardware)."""
    try:
        return resolve_precision(cfg.precision, cpu_facts(), gpu_facts())
    except ValueError as e:
        raise ConfigError(str(e)) from None


def precision_flags(decision: Decision) -> dict[str, bool]:
    return {"bf16": decision.resolved == "bf16", "fp16": decision.resolved == "fp16"}


def load_model(cfg: TrainConfig, resolved: ResolvedModel):
    import torch
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"dtype": torch.float32}
    if cfg.method == "qlora":
        if not torch.cuda.is_available():
            raise ConfigError(
                "method 'qlora' loads the base model in 4 bits with bitsandbytes, which needs a CUDA GPU; "
                "on CPU use method=lora"
            )
        from transformers import BitsAndBytesConfig

        compute = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=compute
        )
        kwargs["dtype"] = compute
    elif torch.cuda.is_available() and cfg.method == "full":
        kwargs["dtype"] = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    return AutoModelForCausalLM.from_pretrained(resolved.transformers_path(), **kwargs)


def peft_config(cfg: TrainConfig):
    if cfg.method == "full":
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=cfg.lora_target_modules,
        task_type="CAUSAL_LM",
    )


# ----------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------
def prepare_data(cfg: TrainConfig, tokenizer, pair: ChatTemplatePair) -> PreparedData:
    rows = read_records(cfg.resolved_data(), RoleExample)
    data = prepare_examples(
        rows,
        tokenizer,
        pair.training,
        mode=cfg.mode,
        fmt=get_format(cfg.format),
        system_prompt=cfg.system_prompt,
        max_length=cfg.max_length,
        include_statuses=cfg.include_statuses,
        row_order=cfg.row_order,
        max_rows=cfg.max_rows,
    )
    if not data.examples:
        raise ConfigError(f"{cfg.data}: no rows left to train on (excluded: {data.summary()['excluded']})")
    return data


def report_exclusions(data: PreparedData) -> None:
    for reason, ids in data.excluded.items():
        shown = ", ".join(ids[:10]) + (" ..." if len(ids) > 10 else "")
        console.print(f"[yellow]excluded {len(ids)} row(s), {reason}:[/] {shown}", highlight=False)


def print_dry_run(data: PreparedData, tokenizer, n: int, out: Console | None = None) -> None:
    """Rendered examples with trained spans in green and between ⟦ ⟧ (visible without colour too)."""
    out = out or Console()
    for example in data.examples[:n]:
        text = Text()
        for piece, trained in trained_spans(tokenizer, example):
            if trained:
                text.append("⟦" + piece + "⟧", style="bold green")
            else:
                text.append(piece, style="dim")
        out.rule(f"{example.id}: {len(example.input_ids)} tokens, {example.trained_tokens} trained")
        out.print(text, highlight=False)
    summary = data.summary()
    out.print(f"{summary['rows']} rows, {summary['trained_tokens']} trained tokens of {summary['total_tokens']}")


def to_dataset(data: PreparedData):
    from datasets import Dataset

    return Dataset.from_dict(
        {"input_ids": [e.input_ids for e in data.examples], "labels": [e.labels for e in data.examples]}
    )


# ----------------------------------------------------------------------------------------------
# train
# ----------------------------------------------------------------------------------------------
def sft_config(cfg: TrainConfig, out: Path, precision: Decision):
    import torch
    from trl import SFTConfig

    return SFTConfig(
        output_dir=str(out),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.per_device_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_steps,
        weight_decay=cfg.weight_decay,
        adam_beta1=cfg.adam_beta1,
        adam_beta2=cfg.adam_beta2,
        max_grad_norm=cfg.max_grad_norm,
        seed=cfg.seed,
        data_seed=cfg.seed,
        # Rows over max_length were already excluded (never cut); TRL needs the bound only to pack.
        max_length=cfg.max_length if cfg.packing else None,
        packing=cfg.packing,
        padding_free=cfg.padding_free or cfg.packing,
        activation_checkpointing=cfg.gradient_checkpointing,
        logging_steps=cfg.logging_steps,
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        report_to=["tensorboard"] if cfg.tensorboard else [],
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
        disable_tqdm=True,  # see progress_callback
        remove_unused_columns=False,
        **precision_flags(precision),
    )


def stop_callback(steps: int):
    from transformers import TrainerCallback

    class StopAfterSteps(TrainerCallback):
        """Ends training after `steps` optimizer steps with a checkpoint, as a killed run would leave it."""

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step >= steps:
                control.should_save = True
                control.should_training_stop = True
            return control

    return StopAfterSteps()


def progress_callback():
    """The progress line (selfprompt.progress) in optimizer steps, on the main process; it replaces the
    Trainer's tqdm bar (disable_tqdm), whose rate would count the steps a resumed run skips."""
    from transformers import TrainerCallback

    from selfprompt.progress import ProgressLine

    class StepProgress(TrainerCallback):
        line: ProgressLine | None = None

        def on_train_begin(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                self.line = ProgressLine("train", state.max_steps, "steps", console=console).__enter__()
                self.line.advance(state.global_step, cached=True)  # steps done before a resume

        def on_step_end(self, args, state, control, **kwargs):
            if self.line is not None:
                self.line.advance(state.global_step - self.line.tally.done)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if self.line is not None and logs and "loss" in logs:
                self.line.set_detail(f"loss {logs['loss']:.4f}")

        def on_train_end(self, args, state, control, **kwargs):
            if self.line is not None:
                self.line.__exit__(None, None, None)
                self.line = None

    return StepProgress()


def checkpoints_newest_first(out: Path) -> list[Path]:
    found = [p for p in out.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]), reverse=True)


def is_complete_checkpoint(folder: Path) -> bool:
    # Trainer writes trainer_state.json last, in place: a kill -9 during a save leaves a checkpoint
    # without it, or with it cut short. Resuming from such a folder would crash or lose the RNG state.
    try:
        json.loads((folder / "trainer_state.json").read_text())
        return True
    except (OSError, ValueError):
        return False


def find_resume_checkpoint(out: Path, resume: str | None) -> str | None:
    checkpoints = checkpoints_newest_first(out) if out.is_dir() else []
    if resume is None:
        if checkpoints:
            raise ConfigError(
                f"{out} already holds checkpoints ({checkpoints[0].name}); pass --resume auto to continue, or pick another output_dir"
            )
        return None
    if resume == "auto":
        complete = [c for c in checkpoints if is_complete_checkpoint(c)]
        return str(complete[0]) if complete else None  # None: nothing to resume, start fresh
    if not Path(resume).is_dir():
        raise ConfigError(f"--resume {resume}: not a checkpoint folder (use 'auto' or a path)")
    return resume


def build_trainer(cfg: TrainConfig, model, tokenizer, dataset, out: Path, precision: Decision):
    from trl import SFTTrainer

    callbacks = [progress_callback()] + ([stop_callback(cfg.stop_after_steps)] if cfg.stop_after_steps else [])
    return SFTTrainer(
        model=model,
        args=sft_config(cfg, out, precision),
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=peft_config(cfg),
        callbacks=callbacks,
    )


# ----------------------------------------------------------------------------------------------
# save
# ----------------------------------------------------------------------------------------------
def trainable_params_sha256(model) -> str:
    """Hash of the trainable weights, to show every data-parallel rank ended with the same model."""
    h = hashlib.sha256()
    for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
        if p.requires_grad:
            h.update(name.encode())
            h.update(p.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def write_loss_curve(log_history: list[dict], out: Path) -> None:
    rows = [h for h in log_history if "loss" in h]
    with (out / LOSS_CSV).open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["step", "epoch", "loss", "learning_rate", "grad_norm"])
        for h in rows:
            writer.writerow([h["step"], h.get("epoch"), h["loss"], h.get("learning_rate"), h.get("grad_norm")])
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on servers
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([h["step"] for h in rows], [h["loss"] for h in rows], marker=".")
    ax.set(xlabel="optimizer step", ylabel="training loss", title=out.name)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / LOSS_PNG, dpi=100)
    plt.close(fig)


def save_outputs(cfg: TrainConfig, trainer, tokenizer, pair: ChatTemplatePair, out: Path) -> None:
    trainer.save_model(str(out))  # peft adapter for lora/qlora, full weights otherwise
    if not trainer.accelerator.is_main_process:
        return
    tokenizer.chat_template = pair.original
    tokenizer.save_pretrained(str(out))
    if cfg.method != "full":
        write_json(out / ADAPTER_BASE_FILE, {"base_model": cfg.model})
    write_loss_curve(trainer.state.log_history, out)


def write_run_records(cfg: TrainConfig, data: PreparedData, pair: ChatTemplatePair, out: Path, extra: dict) -> None:
    summary = {
        "mode": cfg.mode,
        "method": cfg.method,
        "format": cfg.format,
        "chat_template": pair.name,
        "parity_sha256": cfg.parity_sha256(),
        "config_differs_from_parity_in": ["mode"],
        "data": data.summary(),
        "row_ids": data.row_ids,
        **extra,
    }
    write_json(out / TRAIN_SUMMARY, summary)
    write_manifest(
        out,
        stage="train",
        config=cfg.model_dump(),
        data_files=[cfg.resolved_data()],
        seed=cfg.seed,
        extra={"train": {k: v for k, v in summary.items() if k != "row_ids"}},
    )


# ----------------------------------------------------------------------------------------------
# the recipe, top to bottom
# ----------------------------------------------------------------------------------------------
def run(cfg: TrainConfig, resume: str | None = None, dry_run: int | None = None) -> RunResult | None:
    # setup
    out = cfg.resolved_output_dir()
    resolved, tokenizer, pair = setup_tokenizer(cfg)

    # data
    data = prepare_data(cfg, tokenizer, pair)
    if dry_run is not None:
        report_exclusions(data)
        print_dry_run(data, tokenizer, dry_run)
        return None
    checkpoint = find_resume_checkpoint(out, resume)
    import transformers

    transformers.set_seed(cfg.seed)  # LoRA init happens before the Trainer seeds anything
    precision = decide_precision(cfg)
    model = load_model(cfg, resolved)
    trainer = build_trainer(cfg, model, tokenizer, to_dataset(data), out, precision)
    main = trainer.accelerator.is_main_process
    decisions = machine_decisions(precision, model, trainer)
    if main:
        console.print(f"precision {precision.requested} -> {precision.resolved}: {precision.reason}", highlight=False)
        report_exclusions(data)
        out.mkdir(parents=True, exist_ok=True)

    # train
    cpu_start = time.process_time()
    metrics = trainer.train(resume_from_checkpoint=checkpoint).metrics
    cpu_seconds = time.process_time() - cpu_start
    state = trainer.state
    losses = [h["loss"] for h in state.log_history if "loss" in h]
    final_loss = losses[-1] if losses else None
    completed = not cfg.stop_after_steps or state.global_step >= state.max_steps
    _write_rank_hash(trainer, out)

    # save
    if completed:
        save_outputs(cfg, trainer, tokenizer, pair, out)
    if main:
        write_run_records(
            cfg,
            data,
            pair,
            out,
            {
                "completed": completed,
                "global_step": state.global_step,
                "max_steps": state.max_steps,
                "final_loss": final_loss,
                "train_seconds": metrics.get("train_runtime"),
                "train_cpu_seconds": cpu_seconds,
                "resumed_from": checkpoint,
                "num_processes": trainer.accelerator.num_processes,
                "decisions": decisions,
            },
        )
    trainer.accelerator.wait_for_everyone()
    return RunResult(
        output_dir=out,
        completed=completed,
        global_step=state.global_step,
        final_loss=final_loss,
        data=data,
        train_seconds=metrics.get("train_runtime", 0.0),
        train_cpu_seconds=cpu_seconds,
    )


def machine_decisions(precision: Decision, model, trainer) -> dict[str, dict]:
    """Every choice made from what the machine reports, with its reason (for the manifest)."""
    return {
        "precision": precision.as_dict(),
        **model_decisions(model),
        "processes": Decision(
            "processes",
            "launcher",
            trainer.accelerator.num_processes,
            "set by the launcher (torchrun/accelerate); 1 without one",
        ).as_dict(),
    }


def _write_rank_hash(trainer, out: Path) -> None:
    state = trainer.accelerator.state
    if getattr(state, "deepspeed_plugin", None) or getattr(state, "fsdp_plugin", None):
        return  # sharded: each rank holds a different slice, so equal hashes are not expected
    rank = trainer.accelerator.process_index
    model = trainer.accelerator.unwrap_model(trainer.model)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"params_sha256.rank{rank}.txt").write_text(trainable_params_sha256(model) + "\n")


def describe(result: RunResult) -> str:
    state = "finished" if result.completed else "stopped early (continue with --resume auto)"
    return json.dumps(
        {
            "output_dir": str(result.output_dir),
            "state": state,
            "step": result.global_step,
            "final_loss": result.final_loss,
        }
    )
