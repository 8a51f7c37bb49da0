"""`selfprompt annotate`: build LIMA-Role (or any role-annotated set) with any teacher LLM."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from selfprompt.errors import ConfigError


def parse_field_map(text: str | None) -> dict[str, str] | None:
    """'question=instruction,answer=output' -> {'question': 'instruction', 'answer': 'output'}."""
    if not text:
        return None
    mapping = {}
    for part in text.split(","):
        ours, sep, theirs = part.partition("=")
        if not sep or not ours.strip() or not theirs.strip():
            raise ConfigError(f"--field-map: '{part}' is not OURS=THEIRS (e.g. question=instruction,answer=output)")
        mapping[ours.strip()] = theirs.strip()
    return mapping


def annotate(
    out: Path = typer.Option(..., "--out", "-o", help="Output JSONL (LIMA-Role rows); resumed if it exists."),
    data: str = typer.Option("lima", help="'lima' or a path to an instruction JSONL file."),
    field_map: Optional[str] = typer.Option(None, help="Field mapping, e.g. question=instruction,answer=output."),
    data_dir: Optional[str] = typer.Option(None, help="Local data mirror (default: $SELFPROMPT_DATA_DIR)."),
    limit: Optional[int] = typer.Option(None, min=1, help="Only the first N rows."),
    max_chars: Optional[int] = typer.Option(None, min=1, help="Only rows whose question+answer have at most N characters "
                                            "(applied before --limit)."),
    teacher: str = typer.Option("default", help="Teacher: API model name (openai) or model path / 'default'."),
    backend: str = typer.Option("openai", help="openai | hf | llamacpp."),
    base_url: Optional[str] = typer.Option(None, help="OpenAI-compatible server URL (openai backend)."),
    api_key_env: str = typer.Option("OPENAI_API_KEY", help="Environment variable that holds the API key."),
    template: str = typer.Option("expert-role-v1", help="Annotation template id or YAML path."),
    structured: bool = typer.Option(False, "--json/--no-json", help="Ask the server for JSON (response_format)."),
    concurrency: int = typer.Option(8, min=1, help="Requests in flight."),
    rpm: Optional[float] = typer.Option(None, help="Requests-per-minute limit."),
    tpm: Optional[float] = typer.Option(None, help="Tokens-per-minute limit."),
    max_retries: int = typer.Option(6, min=0, help="Transport retries per request (429, 5xx, timeouts, drops)."),
    max_attempts: int = typer.Option(3, min=1, help="Replies per row; invalid replies are retried with feedback."),
    request_timeout: float = typer.Option(300.0, help="Seconds before a request counts as timed out."),
    temperature: Optional[float] = typer.Option(None, help="Override the template's temperature."),
    top_p: Optional[float] = typer.Option(None, help="Override the template's top_p."),
    max_tokens: Optional[int] = typer.Option(None, help="Override the template's max_tokens."),
    seed: int = typer.Option(0, help="Sampling seed (part of the cache key)."),
    cache: Optional[Path] = typer.Option(None, help="Request cache file (default <out>.cache.sqlite)."),
    price_in: Optional[float] = typer.Option(None, help="Price per 1M prompt tokens (for cost figures)."),
    price_out: Optional[float] = typer.Option(None, help="Price per 1M completion tokens."),
    retry_errors: bool = typer.Option(False, "--retry-errors", help="Redo rows that failed with status 'error' "
                                      "in an earlier run (later rows come from the cache)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print requests, tokens and cost estimates; send nothing."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the progress bar."),
) -> None:
    """A teacher LLM writes an expert role-play prompt for every question (the LIMA-Role data step)."""
    from selfprompt.annotate.run import AnnotateConfig, dry_run as plan, run_annotate
    from selfprompt.preflight import check_backend

    check_backend(backend)  # settings first (run_annotate reads template and rows before the teacher)

    cfg = AnnotateConfig(
        data=data, field_map=parse_field_map(field_map), data_dir=data_dir, limit=limit, max_chars=max_chars, out=out, teacher=teacher,
        backend=backend, base_url=base_url, api_key_env=api_key_env, template=template, structured=structured,
        concurrency=concurrency, rpm=rpm, tpm=tpm, max_retries=max_retries, max_attempts=max_attempts,
        request_timeout=request_timeout, temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed,
        cache=cache, price_in=price_in, price_out=price_out, retry_errors=retry_errors,
    )
    console = Console()
    if dry_run:
        console.print_json(json.dumps(plan(cfg)))
        return
    summary = run_annotate(cfg, show_progress=progress, console=Console(stderr=True))
    print_summary(console, summary, cfg.summary_path)


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
