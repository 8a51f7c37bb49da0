"""`selfprompt` command line. Thin: each stage registers its own commands from `<stage>/cli.py`."""

from __future__ import annotations

import importlib
import sys

import typer
from rich.console import Console

from selfprompt.errors import SelfPromptError

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Self-Prompt Tuning end to end: annotate, train, ask, eval, judge, run, report, serve.",
)

STAGE_CLIS = (
    "selfprompt.generate.cli",  # ask
    "selfprompt.generate.serve",  # serve
    "selfprompt.annotate.cli",  # annotate
    "selfprompt.train.cli",  # train, merge
    "selfprompt.evaluate.cli",  # eval, eval score
    "selfprompt.evaluate.judge_cli",  # judge
    "selfprompt.report.cli",  # report
    "selfprompt.experiment.cli",  # run
)

for _module in STAGE_CLIS:
    try:
        importlib.import_module(_module).register(app)
    except ModuleNotFoundError as e:  # a stage not built yet; any other missing import is a real error
        if e.name != _module:
            raise


def main() -> None:
    try:
        app(standalone_mode=False)
    except SelfPromptError as e:
        Console(stderr=True).print(f"[bold red]error:[/] {e}", highlight=False)
        sys.exit(2)
