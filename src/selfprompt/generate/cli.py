"""`selfprompt ask`: ask questions under a condition; the role prompt and the answer are shown apart.

One question (without --json) is streamed; several are answered in one batch. --json prints one
JSON object per question (the ConditionOutput fields) on stdout.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from selfprompt.errors import ConfigError
from selfprompt.format import DEFAULT_FORMAT, RoleDecided, SelfPromptFormat, StreamParser, get_format
from selfprompt.generate.backends import BACKEND_HELP, Backend, ChatResponse, Sampling, build_backend
from selfprompt.generate.conditions import (
    CONDITIONS,
    Condition,
    ConditionOutput,
    IclSelfPrompt,
    ManualRole,
    check_condition,
    default_role_sampling,
    get_condition,
)
from selfprompt.preflight import check_backend, check_questions
from selfprompt.progress import ProgressLine


def register(app: typer.Typer) -> None:
    app.command("ask")(ask)


def ask(
    questions: list[str] = typer.Argument(..., help="One or more questions; one is streamed, several are batched."),
    condition: str = typer.Option(IclSelfPrompt.name, help=f"How the model is asked: {' | '.join(CONDITIONS)}."),
    model: str = typer.Option(
        "default",
        help="Model: default, HF folder, GGUF file, adapter folder, hub id; "
        "for --backend openai, the served model name.",
    ),
    backend: str = typer.Option("auto", help=BACKEND_HELP.format(embedded="hf")),
    base_url: str | None = typer.Option(None, help="openai backend: server URL (default: $OPENAI_BASE_URL)."),
    api_key_env: str = typer.Option("OPENAI_API_KEY", help="openai backend: environment variable holding the key."),
    max_tokens: int = typer.Option(256, min=1, help="Most new tokens per answer."),
    temperature: float = typer.Option(0.0, min=0.0, help="0 is greedy decoding."),
    top_p: float = typer.Option(1.0, min=0.0, max=1.0),
    seed: int = typer.Option(0, help="Sampling seed."),
    fmt_name: str = typer.Option(DEFAULT_FORMAT.id, "--format", help="Self-prompt format of a tuned model."),
    role_prompt: str | None = typer.Option(None, help="manual-role: the user turn that sets the role."),
    acceptance: str = typer.Option(
        "Understood. I will answer as that expert.", help="manual-role: the assistant's reply."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object per question instead of panels."),
) -> None:
    """Ask the model; it writes its own expert role prompt (icl-self-prompt, self-prompt), then answers."""
    check_questions(questions)  # settings first: loading a model takes a while
    fmt = get_format(fmt_name)
    manual = ManualRole(role_prompt, acceptance) if role_prompt else None
    answering = check_condition(condition, manual)  # fail before loading a model
    check_backend(backend)
    try:
        sampling = Sampling(max_tokens=max_tokens, temperature=temperature, top_p=top_p, seed=seed)
    except ValidationError as e:
        raise ConfigError(f"bad sampling option: {e.errors()[0]['loc'][0]}: {e.errors()[0]['msg']}") from None
    client = build_backend(model, backend, base_url=base_url, api_key_env=api_key_env, embedded="hf")
    try:
        if len(questions) == 1 and not json_output:
            show(stream_one(client, questions[0], answering, sampling, fmt, manual), Console())
            return
        # In chunks of the backend's own batch size (the batches it would make anyway), so that the
        # progress line moves and answers appear as each chunk is done.
        chunk = getattr(client, "batch_size", 8)
        with ProgressLine("ask", len(questions), "answers") as line:
            for start in range(0, len(questions), chunk):
                outputs = answering.answer(
                    client, questions[start : start + chunk], sampling, fmt=fmt, manual_role=manual
                )
                line.advance(len(outputs))
                for out in outputs:
                    if json_output:
                        typer.echo(json.dumps(output_record(out, client), ensure_ascii=False))
                    else:
                        show_output(out, Console())
    finally:
        client.close()


def output_record(out: ConditionOutput, client: Backend) -> dict:
    record = dataclasses.asdict(out)
    record["usage"] = out.usage.model_dump()
    record["messages"] = [m.model_dump() for m in out.messages]
    record["model"] = client.model_id
    record["backend"] = client.name
    return record


# --- streaming one question -------------------------------------------------------------------------
# Events: ("section", title) opens a section; ("text", piece) adds to it; ("done", ConditionOutput).
Event = tuple[str, object]


def stream_one(
    client: Backend,
    question: str,
    condition: Condition,
    sampling: Sampling,
    fmt: SelfPromptFormat,
    manual: ManualRole | None,
) -> Iterator[Event]:
    """One question under `condition`, streamed: the same requests `Condition.answer` sends, one by one."""
    written = None
    role_request = condition.role_request(question, default_role_sampling(sampling))
    if role_request is not None:
        yield "section", condition.role_title
        yield "text", role_request.assistant_prefix
        text = ""
        for piece in client.stream(role_request):
            text += piece
            yield "text", piece
        written = condition.written_role(ChatResponse(text=text, model=client.model_id), question)
        if written.problem:
            yield "note", f"no usable role written ({written.role_check}); using: {written.role}"
        elif written.role != (role_request.assistant_prefix + text).strip():
            yield "note", f"role used (cleaned): {written.role}"
    elif manual is not None and condition.needs_manual_role:
        yield "section", condition.role_title
        yield "text", manual.role_prompt
    request = condition.answer_request(
        question, sampling, role=written.role if written else None, manual_role=manual, fmt=fmt
    )
    raw = ""
    if condition.role_in_answer:
        parser = StreamParser(fmt)
        for piece in client.stream(request):
            raw += piece
            yield from _parsed_events(parser.feed(piece), condition)
        yield from _parsed_events(parser.finish(), condition)
    else:
        yield "section", "Answer"
        for piece in client.stream(request):
            raw += piece
            yield "text", piece
    # Streaming gives no token counts; the finish reason is "stop" unless the text is empty.
    yield (
        "done",
        condition.read_output(
            question,
            request,
            ChatResponse(text=raw, model=client.model_id),
            role=written.role if written else None,
            fmt=fmt,
            problem=written.problem if written else None,
            role_check=written.role_check if written else None,
        ),
    )


def _parsed_events(events: list, condition: Condition) -> Iterator[Event]:
    """StreamParser events as display events: the role's section and text, then the answer's."""
    for event in events:
        if isinstance(event, RoleDecided):
            if event.role is None:
                yield "section", "Answer (no role prompt written)"
                continue
            yield "section", condition.role_title
            yield "text", event.role
            yield "section", "Answer"
        elif event:
            yield "text", event


# --- display ---------------------------------------------------------------------------------------
def show(events: Iterator[Event], console: Console) -> None:
    for kind, value in events:
        if kind == "section":
            console.print()
            console.rule(f"[bold]{value}")
        elif kind == "text":
            console.print(str(value), end="", markup=False, highlight=False, soft_wrap=True)
        elif kind == "note":
            console.print()
            console.print(Text(str(value), style="yellow"))
        elif kind == "done":
            console.print()
            console.rule()
            out = value
            assert isinstance(out, ConditionOutput)
            if out.format_held is not None:
                held = "yes" if out.format_held else f"no ({out.problem})"
                console.print(f"[dim]condition {out.condition}; self-prompt format held: {held}[/]")


def show_output(out: ConditionOutput, console: Console) -> None:
    console.rule(f"[bold]{out.question}")
    if out.role is not None:
        title = get_condition(out.condition).role_title
        console.print(
            Panel(Text(out.role) if out.role else Text("(empty)", style="dim"), title=title, border_style="cyan")
        )
    console.print(Panel(Text(out.answer), title="Answer", border_style="green"))
    notes = [f"finish: {out.finish_reason}", f"tokens: {out.usage.prompt_tokens}+{out.usage.completion_tokens}"]
    if out.format_held is not None:
        notes.append(f"format held: {'yes' if out.format_held else f'no ({out.problem})'}")
    console.print("[dim]" + "; ".join(notes) + "[/]")
