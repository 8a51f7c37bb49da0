"""`selfprompt` command line. Thin: each stage registers its own commands from `<stage>/cli.py`."""

from __future__ import annotations

import importlib
import sys
import traceback

import typer
from rich.console import Console
from typer._click import exceptions as click_exceptions  # typer vendors click; its exceptions are not re-exported

from selfprompt import __version__
from selfprompt.errors import SelfPromptError

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Self-Prompt Tuning end to end: annotate, train, ask, eval, judge, run, report, serve.",
)


def _version(value: bool) -> None:
    if value:
        print(f"selfprompt {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Self-Prompt Tuning end to end: annotate, train, ask, eval, judge, run, report, serve."""

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


def run_cli(command: typer.Typer) -> None:
    """Run a typer app with the usual manners, and exit with the usual status.

    0 done; 1 a bug (the traceback, and a line saying it is one); 2 a usage error (a short usage
    line and a hint) or a user-fixable SelfPromptError (one line); 130 interrupted (Ctrl-C/SIGINT),
    with a line saying how to resume, so that `selfprompt eval ... && selfprompt report ...` stops.
    """
    err = Console(stderr=True)
    try:
        result = command(standalone_mode=False)
    except SelfPromptError as e:
        err.print(f"[bold red]error:[/] {e}", highlight=False)
        sys.exit(2)
    except click_exceptions.ClickException as e:  # usage errors: unknown option, missing argument, bad value
        e.show()
        sys.exit(e.exit_code)
    except (KeyboardInterrupt, click_exceptions.Abort, typer.Abort):
        result = 130
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except Exception:
        traceback.print_exc()
        err.print("[bold red]This is a bug in selfprompt[/], not a problem with your input: please report it with the "
                  "command line and the traceback above.", highlight=False)
        sys.exit(1)
    # standalone_mode=False returns an exit code instead of exiting: typer.Exit inside a command, and 130
    # for a KeyboardInterrupt (typer turns it into Exit(130)).
    if result == 130:
        err.print("interrupted: what was finished is kept; run the same command again to resume.", highlight=False)
    if isinstance(result, int) and result:
        sys.exit(result)


def main() -> None:
    run_cli(app)
