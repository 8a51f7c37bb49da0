"""`selfprompt annotate`: build LIMA-Role (or any role-annotated set) with any teacher LLM."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from selfprompt.cliconfig import config_command
from selfprompt.errors import SelfPromptError


def run(cfg, ctx: typer.Context, dry_run: bool, progress: bool) -> None:
    """A teacher LLM writes an expert role-play prompt for every question (the LIMA-Role data step).

    selfprompt annotate --data lima --limit 4 --teacher default --out runs/lima_role.jsonl
    """
    from selfprompt.annotate.run import dry_run as plan
    from selfprompt.annotate.run import run_annotate

    console = Console()
    if dry_run:
        console.print_json(json.dumps(plan(cfg)))
        return
    summary = run_annotate(cfg, show_progress=progress, console=Console(stderr=True))
    print_summary(console, summary, cfg.summary_path)
    errors = summary["status"].get("error", 0)
    if summary["rows"] and errors == summary["rows"]:  # nothing came back: `annotate && train` must stop here
        raise SelfPromptError(
            f"every row failed with status 'error' ({errors}): the teacher did not answer (see "
            f"{cfg.summary_path}); fix the server or model, then rerun with --retry-errors"
        )


def _annotate_command():
    from selfprompt.annotate.run import AnnotateConfig

    extra = [
        inspect.Parameter(
            "dry_run",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=bool,
            default=typer.Option(False, "--dry-run", help="Print requests, tokens and cost estimates; send nothing."),
        ),
        inspect.Parameter(
            "progress",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=bool,
            default=typer.Option(True, "--progress/--no-progress", help="Show the progress bar."),
        ),
    ]
    return config_command(AnnotateConfig, run, extra=extra)


annotate = _annotate_command()


def print_summary(console: Console, summary: dict, path: Path) -> None:
    table = Table(title=f"annotate: {summary['rows']} of {summary['input_rows']} rows", show_header=False)
    for status, count in summary["status"].items():
        table.add_row(status, str(count))
    run = summary["this_run"]
    table.add_row("requests sent (this run)", str(run["requests_sent"]))
    table.add_row("cache hits (this run)", str(run["cache_hits"]))
    table.add_row("retries (transport / feedback)", f"{run['transport_retries']} / {run['validation_retries']}")
    table.add_row("tokens (all rows)", str(summary["usage"]["total_tokens"]))
    if summary["cost"] is not None:
        table.add_row("cost (all rows / this run)", f"{summary['cost']:.4f} / {run['cost']:.4f}")
    table.add_row("time (this run)", f"{run['seconds']:.1f} s")
    if summary["role_words"]:
        w = summary["role_words"]
        table.add_row("role prompt words", f"min {w['min']}, median {w['median']}, max {w['max']}")
    for reason, count in summary["reasons"].items():
        table.add_row(f"  reason: {reason}", str(count))
    console.print(table)
    console.print(f"summary: {path}")


def register(app: typer.Typer) -> None:
    app.command("annotate")(annotate)
