"""`selfprompt eval` (run benchmarks), `selfprompt eval score` (score outside predictions), `selfprompt eval tasks`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import Progress

from selfprompt.errors import ConfigError
from selfprompt.generate.conditions import CONDITIONS, DEFAULT_CONDITION

DEFAULT_DATA_DIR = "../shared/data"


def _data_dir(value: Optional[str]) -> str:
    return value or os.environ.get("SELFPROMPT_DATA_DIR") or DEFAULT_DATA_DIR


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


eval_app = typer.Typer(help="Benchmarks with role-aware answer extraction, under every prompting condition.")


@eval_app.callback(invoke_without_command=True)
def eval_command(
    ctx: typer.Context,
    tasks: Optional[str] = typer.Option(None, help="Comma-separated task names (see `selfprompt eval tasks`)."),
    conditions: str = typer.Option(DEFAULT_CONDITION, help=f"Comma-separated: {', '.join(CONDITIONS)}."),
    model: str = typer.Option("default", help="Model: default, HF folder, GGUF file, adapter folder, hub id."),
    backend: str = typer.Option("hf", help="hf, llamacpp or openai."),
    base_url: Optional[str] = typer.Option(None, help="openai backend: server URL (else OPENAI_BASE_URL)."),
    api_key_env: str = typer.Option("OPENAI_API_KEY", help="openai backend: environment variable holding the key."),
    out: Path = typer.Option(Path("runs/eval"), help="Output folder, one run per folder: rerunning with the same "
                             "tasks, conditions, limit and seed resumes; others are refused unless --overwrite."),
    data_dir: Optional[str] = typer.Option(None, help="Data mirror (default $SELFPROMPT_DATA_DIR or ../shared/data)."),
    task_file: list[Path] = typer.Option([], help="Extra task YAML file (repeatable)."),
    limit: Optional[int] = typer.Option(None, help="Items per task (a seeded random subset)."),
    seed: int = typer.Option(0, help="Seed of the item subset and the bootstrap."),
    first: bool = typer.Option(False, help="With --limit: take the first N items instead of a seeded subset."),
    max_tokens: int = typer.Option(256, help="New tokens for the answer."),
    trigger_max_tokens: int = typer.Option(32, help="New tokens after the answer trigger."),
    temperature: float = typer.Option(0.0, help="0 = greedy."),
    batch_size: int = typer.Option(8, help="Items per generate call and per cache append."),
    no_trigger: bool = typer.Option(False, help="Skip the second-pass trigger; regex extractors only."),
    overwrite: bool = typer.Option(False, help="Replace a run with other tasks, conditions, limit or seed in --out "
                                   "(the content-keyed generation cache is kept)."),
) -> None:
    """Run benchmarks: selfprompt eval --model default --tasks gsm8k,mmlu --conditions plain,icl-self-prompt --limit 20"""
    if ctx.invoked_subcommand is not None:
        return
    if not tasks:
        raise ConfigError("--tasks is required, e.g. --tasks gsm8k,mmlu (list them with `selfprompt eval tasks`)")
    from selfprompt.evaluate.runner import EvalConfig, run_eval

    options = {"model": model, "batch_size": batch_size}
    if backend == "openai":
        options = {"model": model, "base_url": base_url, "api_key_env": api_key_env}
    config = EvalConfig(model=model, backend=backend, tasks=_split(tasks), conditions=_split(conditions),
                        data_dir=_data_dir(data_dir), out=str(out), task_files=[str(p) for p in task_file],
                        limit=limit, seed=None if first else seed, max_tokens=max_tokens,
                        trigger_max_tokens=trigger_max_tokens, temperature=temperature, batch_size=batch_size,
                        no_trigger=no_trigger, overwrite=overwrite)
    from selfprompt.evaluate.runner import check_output, run_scope
    from selfprompt.evaluate.tasks import get_tasks
    from selfprompt.generate.backends import get_backend

    get_tasks(config.tasks, config.task_files)  # fail on a bad task name before loading a model
    check_output(out, run_scope(config), overwrite)  # and on a folder that holds another run
    console = Console(stderr=True)
    engine = get_backend(backend, **options)
    try:
        with Progress(console=console, transient=True) as bar:
            bars: dict[str, int] = {}

            def progress(label: str, n: int, total: int) -> None:
                if label not in bars:
                    bars[label] = bar.add_task(label, total=total)
                bar.advance(bars[label], n)

            results = run_eval(config, backend=engine, progress=progress)
    finally:
        engine.close()
    from selfprompt.evaluate.runner import markdown_table

    typer.echo(markdown_table(results))  # plain text: a markdown table must not be re-wrapped
    console.print(f"results, per-item records and manifest in {out}")


@eval_app.command("score")
def score_command(
    predictions: Path = typer.Option(..., help="JSONL rows {task, id, output, trigger_output?, condition?}."),
    out: Optional[Path] = typer.Option(None, help="Output folder (default: <predictions>.scores/)."),
    data_dir: Optional[str] = typer.Option(None, help="Data mirror (default $SELFPROMPT_DATA_DIR or ../shared/data)."),
    task_file: list[Path] = typer.Option([], help="Extra task YAML file (repeatable)."),
    seed: int = typer.Option(0, help="Bootstrap seed."),
) -> None:
    """Score predictions from any source with the same extractors."""
    from selfprompt.evaluate.runner import markdown_table
    from selfprompt.evaluate.score import score_predictions

    out = out or predictions.with_name(predictions.name + ".scores")
    results = score_predictions(predictions, _data_dir(data_dir), out, [str(p) for p in task_file], seed=seed)
    typer.echo(markdown_table(results))
    Console(stderr=True).print(f"scores, per-item records and manifest in {out}")


@eval_app.command("tasks")
def tasks_command(task_file: list[Path] = typer.Option([], help="Extra task YAML file (repeatable).")) -> None:
    """List the registered tasks."""
    from selfprompt.evaluate.tasks import registry

    for name, spec in sorted(registry([str(p) for p in task_file]).items()):
        typer.echo(f"{name:28} v{spec.version:3} {spec.answer_type:7} {spec.metric:9} {spec.description}")


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")
