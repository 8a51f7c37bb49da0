"""`selfprompt` command line. Thin: each stage registers its own commands from `<stage>/cli.py`."""

from __future__ import annotations

import importlib
import sys
import traceback

import typer
from pydantic import ValidationError
from rich.console import Console
from typer._click import exceptions as click_exceptions  # typer vendors click; its exceptions are not re-exported

from selfprompt import __version__
from selfprompt.errors import SelfPromptError, error_field

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
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
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


def raise_bug(err: Console) -> None:
    """Inside an except block: the traceback, a line saying it is a bug, exit status 1."""
    traceback.print_exc()
    err.print(
        "[bold red]This is a bug in selfprompt[/], not a problem with your input: please report it with the "
        "command line and the traceback above.",
        highlight=False,
    )
    sys.exit(1)


def unreachable_server(error: BaseException) -> str | None:
    """The URL (and cause) when `error`, or what caused it, is a failed connection to a server; else None.

    The openai client wraps httpx's connection errors in APIConnectionError/APITimeoutError after its retries."""
    import httpx
    import openai  # a dependency: the client of every OpenAI-compatible server

    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, (openai.APIConnectionError, httpx.TransportError)):
            request = getattr(error, "request", None)
            url = str(getattr(request, "url", "") or "")
            cause = error.__cause__ or error.__context__
            return f"{url or '(no URL)'} ({type(cause or error).__name__}: {cause or error})"
        error = error.__cause__ or error.__context__
    return None


def run_cli(command: typer.Typer) -> None:
    """Run a typer app with the usual manners, and exit with the usual status.

    0 done; 1 a bug (the traceback, and a line saying it is one); 2 a usage error (a short usage
    line and a hint) or a user-fixable SelfPromptError (one line); 130 interrupted (Ctrl-C/SIGINT),
    with a line saying how to resume, so that `selfprompt eval ... && selfprompt report ...` stops.
    """
    err = Console(stderr=True, soft_wrap=True)  # one error, one line, whatever the terminal width
    try:
        result = command(standalone_mode=False)
    except SelfPromptError as e:
        err.print(f"[bold red]error:[/] {e}", highlight=False)
        sys.exit(2)
    except click_exceptions.ClickException as e:  # usage errors: unknown option, missing argument, bad value
        e.show()
        sys.exit(e.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        result = 130
    except OSError as e:
        if e.filename is None:
            raise_bug(err)
        # A path the user gave that cannot be read or written: say which, not a traceback.
        err.print(f"[bold red]error:[/] {e.filename}: {e.strerror or e}", highlight=False)
        sys.exit(2)
    except ValidationError as e:  # a config built from options: one line naming the option, as a usage error
        first = e.errors()[0]
        where = error_field(first) or "value"
        err.print(f"[bold red]error:[/] invalid value for '{where}': {first['msg']}", highlight=False)
        sys.exit(2)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except Exception as e:
        where = unreachable_server(e)
        if where is None:
            raise_bug(err)
        err.print(
            f"[bold red]error:[/] cannot reach the model server {where}: start it, or check --base-url "
            "(and the model name: one that is not a local file or folder goes to a server)",
            highlight=False,
        )
        sys.exit(2)
    # standalone_mode=False returns an exit code instead of exiting: typer.Exit inside a command, and 130
    # for a KeyboardInterrupt (typer turns it into Exit(130)).
    if result == 130:
        err.print("interrupted: what was finished is kept; run the same command again to resume.", highlight=False)
    if isinstance(result, int) and result:
        sys.exit(result)


def main() -> None:
    run_cli(app)
