"""`selfprompt ask`: ask questions under a condition; the role prompt and the answer are shown apart.

One question (without --json) is streamed; several are answered in one batch. --json prints one
JSON object per question (the ConditionOutput fields) on stdout.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Iterator, Optional

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from selfprompt.errors import ConfigError
from selfprompt.format import DEFAULT_FORMAT, SelfPromptFormat, get_format
from selfprompt.generate.backends import BACKENDS, Backend, ChatResponse, Sampling, get_backend
from selfprompt.generate.conditions import (
    CONDITIONS, ROLE_OPENER, ConditionOutput, ManualRole, answer_questions, answer_request, check_condition,
    choose_role, default_role_sampling, read_output, role_request,
)
from selfprompt.preflight import check_backend, check_questions

ASK_CONDITIONS = CONDITIONS


def register(app: typer.Typer) -> None:
    app.command("ask")(ask)


def ask(
    questions: list[str] = typer.Argument(..., help="One or more questions; one is streamed, several are batched."),
    condition: str = typer.Option("icl-self-prompt", help=f"How the model is asked: {' | '.join(ASK_CONDITIONS)}."),
    model: str = typer.Option("default", help="Model: default, HF folder, GGUF file, adapter folder, hub id; "
                              "for --backend openai, the served model name."),
    backend: str = typer.Option("hf", help=f"Client backend: {' | '.join(BACKENDS)}."),
    base_url: Optional[str] = typer.Option(None, help="openai backend: server URL (default: $OPENAI_BASE_URL)."),
    api_key_env: str = typer.Option("OPENAI_API_KEY", help="openai backend: environment variable holding the key."),
    max_tokens: int = typer.Option(256, min=1, help="Most new tokens per answer."),
    temperature: float = typer.Option(0.0, min=0.0, help="0 is greedy decoding."),
    top_p: float = typer.Option(1.0, min=0.0, max=1.0),
    seed: int = typer.Option(0, help="Sampling seed."),
    fmt_name: str = typer.Option(DEFAULT_FORMAT.id, "--format", help="Self-prompt format of a tuned model."),
    role_prompt: Optional[str] = typer.Option(None, help="manual-role: the user turn that sets the role."),
    acceptance: str = typer.Option("Understood. I will answer as that expert.", help="manual-role: the assistant's reply."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object per question instead of panels."),
) -> None:
    """Ask the model; it writes its own expert role prompt (icl-self-prompt, self-prompt), then answers."""
    check_questions(questions)  # settings first: loading a model takes a while
    fmt = get_format(fmt_name)
    manual = ManualRole(role_prompt, acceptance) if role_prompt else None
    check_condition(condition, manual)
    check_backend(backend)
    try:
        sampling = Sampling(max_tokens=max_tokens, temperature=temperature, top_p=top_p, seed=seed)
    except ValidationError as e:
        raise ConfigError(f"bad sampling option: {e.errors()[0]['loc'][0]}: {e.errors()[0]['msg']}") from None
    options = {"model": model}
    if backend == "openai":
        options.update(base_url=base_url, api_key_env=api_key_env)
    client = get_backend(backend, **options)
    try:
        if len(questions) == 1 and not json_output:
            show(stream_one(client, questions[0], condition, sampling, fmt, manual), Console())
            return
        outputs = answer_questions(client, questions, condition, sampling, fmt=fmt, manual_role=manual)
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


def stream_one(client: Backend, question: str, condition: str, sampling: Sampling, fmt: SelfPromptFormat,
               manual: ManualRole | None) -> Iterator[Event]:
    role, problem, role_check = None, None, None
    if condition == "icl-self-prompt":
        yield "section", "Role prompt (written by the model)"
        yield "text", ROLE_OPENER
        written = ""
        for piece in client.stream(role_request(question, default_role_sampling(sampling))):
            written += piece
            yield "text", piece
        role, problem, role_check = choose_role(written, question)
        if problem:
            yield "note", f"no usable role written ({role_check}); using: {role}"
        elif role != (ROLE_OPENER + written).strip():
            yield "note", f"role used (cleaned): {role}"
    elif condition == "manual-role" and manual is not None:
        yield "section", "Role prompt (given)"
        yield "text", manual.role_prompt
    request = answer_request(question, condition, sampling, role=role, manual_role=manual, fmt=fmt)
    raw = ""
    if condition == "self-prompt":
        splitter = RoleAnswerSplitter(fmt.open_tag, fmt.close_tag)
        for piece in client.stream(request):
            raw += piece
            yield from splitter.feed(piece)
        yield from splitter.finish()
    else:
        yield "section", "Answer"
        for piece in client.stream(request):
            raw += piece
            yield "text", piece
    # Streaming gives no token counts; the finish reason is "stop" unless the text is empty.
    yield "done", read_output(question, condition, request, ChatResponse(text=raw, model=client.model_id),
                              role=role, fmt=fmt, problem=problem, role_check=role_check)


class RoleAnswerSplitter:
    """Splits a streamed self-prompt output into a role section and an answer section as it arrives.

    Chunk borders fall anywhere (inside a tag, between the newlines around it), so a possible
    partial close tag is held back, and the newlines that belong to the format are dropped
    even when they arrive in a later chunk.
    """

    def __init__(self, open_tag: str, close_tag: str):
        self.open_tag, self.close_tag = open_tag, close_tag
        self.buffer, self.state = "", "start"  # start -> role -> answer
        self.role_newline_pending = False  # the one "\n" after the open tag, possibly not yet seen
        self.answer_started = False  # until then, leading newlines of the answer are dropped

    def feed(self, piece: str) -> Iterator[Event]:
        self.buffer += piece
        if self.state == "start":
            head = self.buffer.lstrip()
            if len(head) < len(self.open_tag) and self.open_tag.startswith(head):
                return  # could still become the open tag
            if head.startswith(self.open_tag):
                self.state, self.buffer, self.role_newline_pending = "role", head[len(self.open_tag):], True
                yield "section", "Role prompt (written by the model)"
            else:
                self.state = "answer"
                yield "section", "Answer (no role prompt written)"
        if self.state == "role":
            yield from self._feed_role()
        if self.state == "answer":
            yield from self._feed_answer()

    def _feed_role(self) -> Iterator[Event]:
        if self.role_newline_pending and self.buffer:
            self.role_newline_pending = False
            self.buffer = self.buffer[1:] if self.buffer.startswith("\n") else self.buffer
        close = self.buffer.find(self.close_tag)
        if close >= 0:
            role = self.buffer[:close]
            role = role[:-1] if role.endswith("\n") else role  # the format's newline before the close tag
            if role:
                yield "text", role
            self.state, self.buffer = "answer", self.buffer[close + len(self.close_tag):]
            yield "section", "Answer"
            return
        # Keep what could be "\n" + the start of the close tag; emit the rest.
        safe = len(self.buffer) - len(self.close_tag)
        if safe > 0:
            yield "text", self.buffer[:safe]
            self.buffer = self.buffer[safe:]

    def _feed_answer(self) -> Iterator[Event]:
        if not self.answer_started:
            self.buffer = self.buffer.lstrip("\n")
            self.answer_started = bool(self.buffer)
        if self.buffer:
            yield "text", self.buffer
            self.buffer = ""

    def finish(self) -> Iterator[Event]:
        if self.state == "start" and self.buffer.strip():
            yield "section", "Answer (no role prompt written)"
        if self.buffer:
            yield "text", self.buffer
        self.buffer = ""


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
        title = "Role prompt (written by the model)" if out.condition != "manual-role" else "Role prompt (given)"
        console.print(Panel(Text(out.role) if out.role else Text("(empty)", style="dim"), title=title, border_style="cyan"))
    console.print(Panel(Text(out.answer), title="Answer", border_style="green"))
    notes = [f"finish: {out.finish_reason}", f"tokens: {out.usage.prompt_tokens}+{out.usage.completion_tokens}"]
    if out.format_held is not None:
        notes.append(f"format held: {'yes' if out.format_held else f'no ({out.problem})'}")
    console.print("[dim]" + "; ".join(notes) + "[/]")
