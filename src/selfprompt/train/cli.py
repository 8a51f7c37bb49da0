"""`selfprompt train` and `selfprompt merge`; also the entry point of `python -m selfprompt.train`."""

from __future__ import annotations

from pathlib import Path

import typer


def train(
    config: Path = typer.Option(..., "--config", "-c", help="Recipe YAML (see recipes/)."),
    overrides: list[str] | None = typer.Argument(
        None, help="key=value overrides of recipe fields, e.g. mode=baseline."
    ),
    dry_run: int | None = typer.Option(
        None, "--dry-run", help="Print N rendered examples with trained spans marked ⟦ ⟧; no training."
    ),
    resume: str | None = typer.Option(
        None,
        "--resume",
        help="'auto': continue from the newest checkpoint in output_dir (fresh start if none); or a checkpoint folder.",
    ),
) -> None:
    """Fine-tune a model on LIMA-Role: self-prompt mode (role + answer) or baseline (answer only)."""
    from selfprompt.preflight import check_train
    from selfprompt.train.config import load_config
    from selfprompt.train.recipe import describe, run

    cfg = load_config(config, overrides or [])
    check_train(cfg, resume, dry_run=dry_run is not None)  # settings first: loading a model takes a while
    result = run(cfg, resume=resume, dry_run=dry_run)
    if result is not None:
        typer.echo(describe(result))


def merge(
    adapter: Path = typer.Argument(..., help="LoRA adapter folder written by `selfprompt train`."),
    out: Path = typer.Option(..., "--out", "-o", help="New folder for the merged model."),
    base: str | None = typer.Option(
        None, "--base", help="Base model spec; default: the one recorded with the adapter."
    ),
) -> None:
    """Merge a LoRA adapter into its base model: a full folder loadable with plain transformers."""
    from selfprompt.train.merge import merge_adapter

    typer.echo(str(merge_adapter(adapter, out, base=base)))


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("merge")(merge)


def main() -> None:
    """`python -m selfprompt.train ...` (and under `accelerate launch -m`): the train command alone."""
    from selfprompt.cli import run_cli

    standalone = typer.Typer(add_completion=False)
    standalone.command()(train)
    run_cli(standalone)
