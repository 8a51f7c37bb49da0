"""`selfprompt report RUN`: report.html (self-contained) and report.md for a run folder."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from selfprompt.errors import ConfigError


def _labelled(values: list[str], option: str) -> dict[str, Path]:
    out = {}
    for value in values:
        label, sep, path = value.partition("=")
        if not sep:
            label, path = Path(value).name, value
        if not label or not path:
            raise ConfigError(f"{option} expects LABEL=FOLDER or FOLDER, got '{value}'")
        out[label] = Path(path)
    return out


def register(app: typer.Typer) -> None:
    @app.command()
    def report(
        run: Path = typer.Argument(..., help="Run folder: an experiment (experiment.json), an eval or a judge folder."),
        out: Path = typer.Option(None, help="Output folder (default: RUN/report)."),
        eval_dirs: list[str] = typer.Option([], "--eval", help="Extra eval folder, LABEL=FOLDER (repeatable)."),
        judge_dirs: list[str] = typer.Option([], "--judge", help="Extra judge folder, LABEL=FOLDER (repeatable)."),
        baseline: str = typer.Option(
            None,
            help="System every other one is compared with: a system, eval label "
            "or condition (default: the experiment's `baseline`; needed with several).",
        ),
        title: str = typer.Option(None, help="Page title."),
    ) -> None:
        """Write report.html and report.md: accuracy with CIs, deltas, judge outcomes, roles, examples, manifests."""
        from selfprompt.report.build import load_run
        from selfprompt.report.render import write_report

        model = load_run(run, _labelled(eval_dirs, "--eval"), _labelled(judge_dirs, "--judge"), baseline, title)
        html, md = write_report(model, out or run / "report")
        Console(stderr=True).print(f"wrote {html} and {md}", highlight=False)
