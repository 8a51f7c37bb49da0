"""`selfprompt eval` (run benchmarks), `selfprompt eval score` (score outside predictions), `selfprompt eval tasks`."""

from __future__ import annotations

import inspect
from pathlib import Path

import typer
from rich.console import Console

from selfprompt.cliconfig import OverridesGroup, config_command
from selfprompt.progress import PhasedProgress


def run(config, ctx: typer.Context, first: bool) -> None:
    """Run benchmarks under prompting conditions.

    selfprompt eval --model default --tasks gsm8k,mmlu --conditions plain,icl-self-prompt --limit 20
    """
    from selfprompt.data.mirror import resolve_data_dir
    from selfprompt.evaluate.runner import check_output, markdown_table, run_eval, run_scope
    from selfprompt.evaluate.tasks import get_tasks

    if first:
        config = config.model_copy(update={"seed": None})
    # Settings are checked before a model is loaded: task names, the data mirror, the output folder.
    from selfprompt.preflight import check_conditions, check_task_data

    check_conditions(config.conditions)
    get_tasks(config.tasks, config.task_files)
    check_task_data(config.tasks, config.task_files, resolve_data_dir(config.data_dir))  # files in the mirror
    check_output(Path(config.out), run_scope(config), config.overwrite)
    console = Console(stderr=True)
    with PhasedProgress("eval", console=console) as progress:
        results = run_eval(config, progress=progress)
    typer.echo(markdown_table(results))  # plain text: a markdown table must not be re-wrapped
    console.print(f"results, per-item records and manifest in {config.out}")


def _eval_command():
    from selfprompt.evaluate.runner import EvalConfig

    first = inspect.Parameter(
        "first",
        inspect.Parameter.KEYWORD_ONLY,
        annotation=bool,
        default=typer.Option(
            False, "--first", help="With --limit: take the first N items instead of a seeded subset (seed=null)."
        ),
    )
    return config_command(EvalConfig, run, extra=[first], positional_overrides=False)


eval_app = typer.Typer(
    cls=OverridesGroup,
    help="Benchmarks with role-aware answer extraction, under every "
    "prompting condition. Settings: options, --config FILE and key=value overrides, in any order.",
)
eval_app.callback(invoke_without_command=True)(_eval_command())


@eval_app.command("score")
def score_command(
    predictions: Path = typer.Option(..., help="JSONL rows {task, id, output, trigger_output?, condition?}."),
    out: Path | None = typer.Option(None, help="Output folder (default: <predictions>.scores/)."),
    data_dir: str | None = typer.Option(None, help="Data mirror (default: $SELFPROMPT_DATA_DIR)."),
    task_file: list[Path] = typer.Option([], help="Extra task YAML file (repeatable)."),
    seed: int = typer.Option(0, help="Bootstrap seed."),
) -> None:
    """Score predictions from any source with the same extractors."""
    from selfprompt.data.mirror import resolve_data_dir
    from selfprompt.evaluate.runner import markdown_table
    from selfprompt.evaluate.score import score_predictions

    out = out or predictions.with_name(predictions.name + ".scores")
    results = score_predictions(predictions, resolve_data_dir(data_dir), out, [str(p) for p in task_file], seed=seed)
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
