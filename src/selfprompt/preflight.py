"""Settings checked before a model is loaded.

Loading a model takes seconds to minutes (a hub download, a GGUF conversion, llama.cpp start-up),
so every command calls these first: a misspelled condition, backend or task, a missing data
folder or question file, or an empty question is reported at once, naming the setting, and not
after the wait. Each check is cheap (no model, no network) and raises the error the user would
otherwise get later: ConfigError or DataError (one line, exit 2), or a usage error for a bad
command-line argument.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import typer
from typer._click.globals import get_current_context  # typer vendors click; the context gives the usage line

from selfprompt.errors import ConfigError, DataError


def empty_questions(questions: Sequence[str]) -> list[int]:
    """1-based positions of the questions that are empty or only whitespace."""
    return [n for n, q in enumerate(questions, 1) if not q.strip()]


def check_questions(questions: Sequence[str], param_hint: str = "'QUESTIONS...'") -> None:
    """A command-line usage error (exit 2, with the usage line) when a question is empty or whitespace."""
    if not questions:
        raise typer.BadParameter(
            "give at least one question", ctx=get_current_context(silent=True), param_hint=param_hint
        )
    empty = empty_questions(questions)
    if empty:
        which = "question" if len(empty) == 1 else "questions"
        raise typer.BadParameter(
            f"{which} {', '.join(map(str, empty))} of {len(questions)} empty; a model cannot answer an empty question",
            ctx=get_current_context(silent=True),
            param_hint=param_hint,
        )


def check_backend(name: str) -> None:
    from selfprompt.generate.backends import BACKEND_CHOICES

    if name not in BACKEND_CHOICES:
        raise ConfigError(f"unknown backend '{name}'; valid: {', '.join(BACKEND_CHOICES)}")


def check_conditions(names: Iterable[str], option: str = "--conditions") -> None:
    """Every name is a registered condition (manual-role's texts are checked where they are given)."""
    from selfprompt.generate.conditions import CONDITIONS

    names = list(names)
    if not names:
        raise ConfigError(f"{option}: give at least one condition; valid: {', '.join(CONDITIONS)}")
    unknown = [n for n in names if n not in CONDITIONS]
    if unknown:
        raise ConfigError(f"{option}: unknown condition(s) {', '.join(unknown)}; valid: {', '.join(CONDITIONS)}")


def check_data_dir(explicit: str | Path | None) -> Path:
    """The data mirror folder (--data-dir, then $SELFPROMPT_DATA_DIR), or an error saying how to set it."""
    from selfprompt.data.mirror import resolve_data_dir

    root = resolve_data_dir(explicit)
    assert root is not None  # required=True raises instead
    return root


def check_task_data(tasks: Sequence[str], task_files: Sequence[str | Path], data_dir: str | Path) -> None:
    """Task names are registered and each task's files are in the mirror (`data_dir`, from check_data_dir)
    and match MANIFEST.json."""
    from selfprompt.evaluate.tasks import get_tasks
    from selfprompt.evaluate.tasks import task_files as files_of

    for spec in get_tasks(list(tasks), list(task_files)):
        files_of(spec, data_dir)


def check_input_file(path: str | Path, what: str) -> Path:
    """An input file the user named exists and is a file (DataError naming it otherwise)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(str(p), None, None, f"{what} not found")
    if not p.is_file():
        raise DataError(str(p), None, None, f"{what} is not a file")
    return p


def check_train(cfg, resume: str | None, dry_run: bool = False) -> None:
    """A training config's inputs, before the tokenizer and the model are loaded: the data file, the
    format and, unless it is a dry run (which trains nothing), the resume point and whether the
    method can run on this machine. `cfg` is a TrainConfig."""
    from selfprompt.format import get_format
    from selfprompt.train.recipe import decide_precision, find_resume_checkpoint

    check_input_file(cfg.resolved_data(), "training data (data=)")
    get_format(cfg.format)
    if dry_run:
        return
    find_resume_checkpoint(cfg.resolved_output_dir(), resume)
    decide_precision(cfg)
    if cfg.method == "qlora":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(
                "method 'qlora' loads the base model in 4 bits with bitsandbytes, which needs a CUDA "
                "GPU; on CPU use method=lora"
            )
