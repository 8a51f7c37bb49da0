"""`selfprompt serve`: an OpenAI-compatible chat server over a self-prompt model.

A self-prompt tuned model writes "<role>...</role>" and then its answer in one assistant turn.
Clients want the answer as the message, so the server splits the two:

* non-streaming: `choices[0].message.content` is the answer; `message.role_prompt` the role
  (null when the model wrote none), `message.format_held` / `message.format_problem` say whether
  the output was in the trained format (see `selfprompt.format`).
* streaming: the server buffers text until the role is certain (`selfprompt.format.StreamParser`:
  at once for the trained format; an output whose role could still change with later text is read
  when it ends), sends one delta carrying `role_prompt` and `format_held`, then streams the answer as
  ordinary `content` deltas. Role and answer equal the non-streaming ones.

Extra request field `role_prompt`: prefill this role instead of letting the model choose one
("" forces an empty role: the self-prompt-no-role ablation).

The official `openai` client reads the extra fields through `message.model_extra`.
"""

from __future__ import annotations

import json
import queue
import re
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import typer
from pydantic import BaseModel, ConfigDict, Field

from selfprompt.format import DEFAULT_FORMAT, RoleDecided, SelfPromptFormat, StreamEvent, StreamParser, get_format
from selfprompt.generate.backends import BACKEND_HELP
from selfprompt.generate.backends.base import Backend, ChatRequest, Sampling
from selfprompt.generate.batching import BatchLoopDown, ContinuousBatcher, Outcome, RequestTooLong
from selfprompt.records import Message


class ChatCompletionBody(BaseModel):
    """The subset of OpenAI's request body that the server honours; unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    messages: list[Message]
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=0.0, ge=0.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    seed: int | None = 0
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = Field(
        default=None, description='{"include_usage": true}: a last chunk carries the token usage (hf backend).'
    )
    role_prompt: str | None = Field(default=None, description="Force this role (prefill) instead of the model's own.")
    # Read only to refuse them: a client asking for these would misread a reply without them.
    n: int = Field(default=1, description="Choices per request; only 1 is served.")
    logprobs: bool | None = Field(
        default=None, description="Not served: a request asking for log probabilities gets 400."
    )
    top_logprobs: int | None = Field(default=None, description="Not served (see logprobs).")

    def unsupported(self) -> dict[str, Any] | None:
        """The error body for options this server does not honour, else None."""
        if self.n != 1:
            return openai_error(f"n={self.n}: this server returns one choice per request; send n=1", "n")
        if self.logprobs or self.top_logprobs:
            return openai_error("logprobs are not served by selfprompt serve", "logprobs")
        return None

    def too_long_error(self, error: RequestTooLong) -> dict[str, Any]:
        """The error body for a request that does not fit. Its message names the token limit as the client set it
        (max_completion_tokens, the one to_request takes when both are given); its param is that limit, unless the
        prompt alone fills the server's context (or the client set none): then `messages`."""
        limit = "max_completion_tokens" if self.max_completion_tokens is not None else "max_tokens"
        client_set = self.max_completion_tokens is not None or self.max_tokens is not None
        words = limit if client_set else "the server's default max_tokens"
        param = limit if client_set and not error.prompt_fills_it else "messages"
        return openai_error(error.describe(words), param)

    def to_request(self, fmt: SelfPromptFormat, default_max_tokens: int) -> ChatRequest:
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        sampling = Sampling(
            max_tokens=self.max_completion_tokens or self.max_tokens or default_max_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            seed=self.seed,
            stop=stops,
        )
        prefix = fmt.role_prefix(self.role_prompt) if self.role_prompt is not None else ""
        return ChatRequest(messages=self.messages, sampling=sampling, assistant_prefix=prefix)


# ---------------------------------------------------------------------------------------------
# Streaming: split role from answer as text arrives


def as_deltas(events: list[StreamEvent]) -> list[dict[str, Any]]:
    """StreamParser events as OpenAI delta dicts: the role once (with format_held), then answer content."""
    deltas: list[dict[str, Any]] = []
    for event in events:
        if isinstance(event, RoleDecided):
            deltas.append(
                {
                    "role": "assistant",
                    "content": "",
                    "role_prompt": event.role,
                    "format_held": event.held,
                    "format_problem": event.problem,
                }
            )
        elif event:
            deltas.append({"content": event})
    return deltas


# ---------------------------------------------------------------------------------------------
# The app


def create_app(
    backend: Backend,
    *,
    model_name: str | None = None,
    fmt: SelfPromptFormat = DEFAULT_FORMAT,
    default_max_tokens: int = 512,
    max_batch: int = 16,
    seeded_sampling: bool = False,
) -> Any:
    """The FastAPI app. On the hf backend concurrent requests share one continuous batch of up to
    `max_batch` requests (see selfprompt.generate.batching); other backends answer one at a time."""
    from contextlib import asynccontextmanager

    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, StreamingResponse
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from selfprompt.generate.backends.hf import HFBackend

    name = model_name or backend.model_name
    batcher: ContinuousBatcher | None = None
    if isinstance(backend, HFBackend):
        batcher = ContinuousBatcher(
            backend, max_batch=max_batch, max_tokens=default_max_tokens, seeded_sampling=seeded_sampling
        )

    @asynccontextmanager
    async def lifespan(_: Any):
        if batcher is not None:
            batcher.start()
        try:
            yield
        finally:
            if batcher is not None:
                batcher.close()

    app = FastAPI(title="selfprompt serve", lifespan=lifespan)

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Any, exc: RequestValidationError) -> JSONResponse:
        # FastAPI answers a malformed body with 422 and its own shape; OpenAI's API (and vLLM) with 400 and
        # {"error": ...}, which is what clients turn into their usual exception (openai.BadRequestError).
        errors, content_type = exc.errors(), request.headers.get("content-type")
        whole_body = all(len(error.get("loc", ())) <= 1 for error in errors)
        # FastAPI hands the model the bytes of a body it did not read as JSON: its test of the header is its own
        # (text/json and application/x-json are not read; a body with no header is, in older FastAPI). An empty body
        # comes as None: there the header is all there is to go by.
        unread = isinstance(exc.body, (bytes, bytearray)) or (
            exc.body is None and (content_type is None or "json" not in content_type.lower())
        )
        if whole_body and unread:
            # Pydantic's complaint about the body as a whole ("Input should be a valid dictionary") would hide that
            # the header is what is wrong.
            got = f"got {content_type!r}" if content_type else "got none"
            message = f"body: send it as JSON with the header Content-Type: application/json ({got})"
            return JSONResponse(status_code=400, content=openai_error(message, None))
        return JSONResponse(status_code=400, content=validation_error(errors))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Any, exc: StarletteHTTPException) -> JSONResponse:
        # FastAPI's own refusals (a body it cannot read: bad UTF-8, an integer of more than 4300 digits; an unknown
        # path or method) in the same {"error": ...} shape, with their status.
        return JSONResponse(
            status_code=exc.status_code, content=openai_error(str(exc.detail), None), headers=exc.headers
        )

    # Backends without a batcher handle one request at a time; one lock covers generate and stream alike.
    busy = threading.Lock()

    @app.get("/v1/models")
    def list_models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "selfprompt"}]}

    @app.get("/health")
    def health() -> Any:
        # A batching loop that died answers nothing: say so, so that whoever manages the server sees it.
        if batcher is not None and not batcher.alive():
            return JSONResponse(status_code=503, content={"status": "error", "detail": "batching loop stopped"})
        return {"status": "ok"}

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatCompletionBody) -> Any:
        refused = refuse_empty_question(body.messages) or body.unsupported()
        if refused is not None:
            return JSONResponse(status_code=400, content=refused)
        request = body.to_request(fmt, default_max_tokens)
        if batcher is not None:
            try:
                batcher.admit(request)  # before a stream starts: its status can still be an error
            except RequestTooLong as e:
                return JSONResponse(status_code=400, content=body.too_long_error(e))
            except BatchLoopDown as e:
                return JSONResponse(status_code=503, content=openai_error(str(e), None, "server_error"))
            if body.stream:
                usage = bool((body.stream_options or {}).get("include_usage"))
                return StreamingResponse(
                    _sse_batched(batcher, request, name, fmt, usage), media_type="text/event-stream"
                )
            outcome = Outcome()
            async for _ in batcher.stream(request, outcome):
                pass
            return completion_json(
                outcome.text,
                request,
                outcome.finish_reason,
                outcome.prompt_tokens,
                outcome.completion_tokens,
                name,
                fmt,
            )
        if body.stream:
            return StreamingResponse(_sse(backend, request, name, fmt, busy), media_type="text/event-stream")

        def run():
            with busy:
                return backend.generate([request])[0]

        response = await run_in_threadpool(run)
        return completion_json(
            response.text,
            request,
            response.finish_reason,
            response.usage.prompt_tokens,
            response.usage.completion_tokens,
            name,
            fmt,
        )

    return app


def openai_error(message: str, param: str | None, kind: str = "invalid_request_error") -> dict[str, Any]:
    """An error body as OpenAI's API sends it, so that clients raise their usual exception."""
    return {"error": {"message": message, "type": kind, "param": param, "code": None}}


# How pydantic names the member of a union (`str | list[str]`) that an error comes from, in the error's loc.
_UNION_MEMBER = re.compile(r"(str|int|float|bool|list|dict|none|[\w-]+\[.*\])")


def validation_error(errors: Any) -> dict[str, Any]:
    """The OpenAI-style error body for pydantic's errors of a request body: each as "field: problem", the first
    field (as `messages[0].role`) its param."""
    fields, problems = [], []
    for error in errors:
        if error.get("type") == "json_invalid":
            # Its loc is ("body", character offset): no field to name.
            reason = (error.get("ctx") or {}).get("error", "")
            offset = [part for part in error.get("loc", ()) if isinstance(part, int)]
            where = f" at character {offset[0]}" if offset else ""
            fields.append(None)
            problems.append(f"body: not valid JSON{where}" + (f" ({reason})" if reason else ""))
            continue
        field = ""
        for part in error.get("loc", ()):
            if part == "body" or (isinstance(part, str) and _UNION_MEMBER.fullmatch(part)):
                continue  # a union's member (stop: "str", "list[str]") is no field of the body
            field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
        fields.append(field or None)
        problems.append(f"{field or 'body'}: {error.get('msg', 'invalid')}")
    return openai_error("; ".join(problems) or "invalid request body", fields[0] if fields else None)


def refuse_empty_question(messages: list[Message]) -> dict[str, Any] | None:
    """The error body for a request with no question (no user message, or an empty or blank one), else None."""
    users = [k for k, m in enumerate(messages) if m.role == "user"]
    if not users:
        return openai_error("messages: give at least one user message (the question)", "messages")
    for k in users:
        if not messages[k].content.strip():
            return openai_error(
                f"messages[{k}].content: the question is empty; a model cannot answer an empty question",
                f"messages[{k}].content",
            )
    return None


def completion_json(
    text: str,
    request: ChatRequest,
    finish_reason: str,
    prompt_tokens: int,
    completion_tokens: int,
    model: str,
    fmt: SelfPromptFormat,
) -> dict[str, Any]:
    parsed = fmt.parse(request.assistant_prefix + text)
    message = {
        "role": "assistant",
        "content": parsed.answer,
        "role_prompt": parsed.role,
        "format_held": parsed.held,
        "format_problem": parsed.problem,
    }
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": message, "finish_reason": "length" if finish_reason == "length" else "stop"}
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


class _Chunks:
    """OpenAI chunk events of one streamed reply, with the role split from the answer as text arrives."""

    def __init__(self, model: str, fmt: SelfPromptFormat):
        self.id, self.created, self.model = f"chatcmpl-{uuid.uuid4().hex}", int(time.time()), model
        self.parser = StreamParser(fmt)

    def event(self, delta: dict[str, Any], finish: str | None = None) -> str:
        chunk = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"

    def feed(self, text: str) -> list[str]:
        return [self.event(delta) for delta in as_deltas(self.parser.feed(text))]

    def finish(self, finish_reason: str) -> list[str]:
        """The last events: what the parser still held, the finish reason (as OpenAI words it), [DONE]."""
        events = [self.event(delta) for delta in as_deltas(self.parser.finish())]
        events.append(self.event({}, "length" if finish_reason == "length" else "stop"))
        return [*events, "data: [DONE]\n\n"]


async def _sse_batched(
    batcher: ContinuousBatcher, request: ChatRequest, model: str, fmt: SelfPromptFormat, usage: bool = False
):
    """Server-sent events for one request of the continuous batch; the finish reason is the non-streamed one.
    With `usage`, a chunk with no choices and the token usage comes before [DONE], as OpenAI sends it."""
    chunks, outcome = _Chunks(model, fmt), Outcome()
    for event in chunks.feed(request.assistant_prefix):
        yield event
    async for piece in batcher.stream(request, outcome):
        for event in chunks.feed(piece):
            yield event
    *events, done = chunks.finish(outcome.finish_reason)
    for event in events:
        yield event
    if usage:
        tokens = {
            "prompt_tokens": outcome.prompt_tokens,
            "completion_tokens": outcome.completion_tokens,
            "total_tokens": outcome.prompt_tokens + outcome.completion_tokens,
        }
        chunk = {"id": chunks.id, "object": "chat.completion.chunk", "created": chunks.created, "model": model}
        yield f"data: {json.dumps({**chunk, 'choices': [], 'usage': tokens})}\n\n"
    yield done


def _sse(
    backend: Backend, request: ChatRequest, model: str, fmt: SelfPromptFormat, busy: threading.Lock
) -> Iterator[str]:
    """Server-sent events in OpenAI's chunk format; starlette iterates this in a worker thread.

    `Backend.stream` yields text only, so a backend without a batcher ends its stream with "stop" even
    when max_tokens cut it."""
    chunks = _Chunks(model, fmt)
    yield from chunks.feed(request.assistant_prefix)
    for piece in _pieces(backend, request, busy):
        yield from chunks.feed(piece)
    yield from chunks.finish("stop")


_END = object()


def _pieces(backend: Backend, request: ChatRequest, busy: threading.Lock) -> Iterator[str]:
    """backend.stream() driven from one dedicated thread.

    starlette advances a sync generator from whichever worker thread is free, but backends hold
    thread-owned locks across their yields; so the stream runs in its own thread and hands pieces over.
    """
    pieces: queue.Queue = queue.Queue()

    def work() -> None:
        try:
            with busy:
                for piece in backend.stream(request):
                    pieces.put(piece)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
            pieces.put(exc)
        finally:
            pieces.put(_END)

    threading.Thread(target=work, daemon=True).start()
    while (item := pieces.get()) is not _END:
        if isinstance(item, BaseException):
            raise item
        yield item


# ---------------------------------------------------------------------------------------------
# CLI


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        model: str = typer.Option("default", help="Model: 'default', a folder, a GGUF file or a hub id."),
        backend: str = typer.Option(
            "auto", help=BACKEND_HELP.format(embedded="hf") + " openai proxies another server."
        ),
        host: str = typer.Option("127.0.0.1", help="Interface to bind; loopback unless you mean to expose it."),
        port: int = typer.Option(8000, help="TCP port."),
        served_name: str = typer.Option(
            None, "--served-name", help="Model id reported by /v1/models (default: the model's)."
        ),
        format_name: str = typer.Option(
            DEFAULT_FORMAT.id, "--format", help="Self-prompt format the model was trained on."
        ),
        max_tokens: int = typer.Option(512, min=1, help="Default max_tokens when a request gives none."),
        max_batch: int = typer.Option(
            16, min=1, help="hf backend: most requests decoded together (continuous batching; sizes the KV cache)."
        ),
        seeded_sampling: bool = typer.Option(
            False,
            "--seeded-sampling",
            help="hf backend: run requests with temperature > 0 one at a time with their own seed (reproducible, "
            "unbatched) instead of in the batch, where one random stream serves all requests.",
        ),
        base_url: str = typer.Option(None, help="openai backend: the upstream server's base URL."),
        api_key_env: str = typer.Option(
            "OPENAI_API_KEY", help="openai backend: environment variable holding the upstream server's key."
        ),
    ) -> None:
        """OpenAI-compatible /v1/chat/completions: answer as content, role prompt in `role_prompt`."""
        import socket
        import sys

        import uvicorn

        from selfprompt.generate.backends import build_backend

        fmt = get_format(format_name)  # settings first: loading a model takes a while
        engine = build_backend(model, backend, base_url=base_url, api_key_env=api_key_env, embedded="hf")
        server_app = create_app(
            engine,
            model_name=served_name,
            fmt=fmt,
            default_max_tokens=max_tokens,
            max_batch=max_batch,
            seeded_sampling=seeded_sampling,
        )
        # Bind first, so that the line below is true when printed (and names the real port for --port 0).
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            sock.listen(2048)  # connections made before the app finishes starting wait in the backlog
        except OSError as exc:
            engine.close()
            raise typer.BadParameter(f"cannot listen on {host}:{port}: {exc.strerror}", param_hint="--port") from None
        bound_port = sock.getsockname()[1]
        shown_host = f"[{host}]" if ":" in host else host
        served = served_name or engine.model_name
        try:
            print(
                f"selfprompt serve: listening on http://{shown_host}:{bound_port}/v1 (model {served})", file=sys.stderr
            )
            uvicorn.Server(uvicorn.Config(server_app, log_level="warning")).run(sockets=[sock])
        except KeyboardInterrupt:  # uvicorn shut down on Ctrl-C and passes the interrupt on: a server has no work
            print("selfprompt serve: stopped", file=sys.stderr)  # to resume, so no "run it again to resume" line
        finally:
            sock.close()
            engine.close()
