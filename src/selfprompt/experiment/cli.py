"""`selfprompt run experiments/NAME.yaml [key=value ...]`: annotate -> train -> eval -> answers -> judge -> report."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(
        experiment: Path = typer.Argument(..., help="Experiment YAML, e.g. experiments/demo.yaml."),
        overrides: list[str] | None = typer.Argument(
            None, help="Overrides of the file, e.g. eval.limit=5 judge.max_tokens=64."
        ),
        out: Path = typer.Option(None, help="Output root (default: the file's `out`, else runs/NAME)."),
        dry_run: bool = typer.Option(
            False, "--dry-run", help="Print the stages, their keys and whether each is done; run nothing."
        ),
        stage: str = typer.Option(
            None,
            "--stage",
            help="Run only this stage (e.g. train-self-prompt; its dependencies must be done), as one node of a "
            "multi-machine train stage does (recipes/slurm/train.sbatch).",
        ),
    ) -> None:
        """Run (or resume) the whole study; stages already done with the same inputs are skipped."""
        from selfprompt.experiment.runner import plan_only, run_experiment
        from selfprompt.experiment.spec import load_experiment

        console = Console(stderr=True, soft_wrap=True)  # a command line stays on one line, to copy
        exp = load_experiment(experiment, overrides or [])
        if dry_run:
            for line in plan_only(exp, experiment, out, only=stage):
                console.print(line, highlight=False, markup=False)
            return
        run_experiment(
            exp, experiment, out, log=lambda line: console.print(line, highlight=False, markup=False), only=stage
        )
