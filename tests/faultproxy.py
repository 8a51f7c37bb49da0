"""A real HTTP proxy on 127.0.0.1 that injects faults in front of a real OpenAI-compatible server.

Runs its own asyncio loop in a thread, so both in-process clients and subprocesses can use it.
Each POST to .../chat/completions consumes the next entry of `faults` (none left: forward):

    "429"        429 with Retry-After: <retry_after> and an OpenAI-style error body
    "quota"      429 with OpenAI's body for an exhausted quota (error code insufficient_quota), no Retry-After
    "500"        500 with an error body
    "401"        401 (not retryable)
    "timeout"    accept, say nothing for `hang_seconds`, then close
    "malformed"  200 with a body that is not valid JSON
    "nochoices"  200 with valid JSON that lacks `choices`
    "drop"       close the connection without a response

`rewrite(request_json) -> str | None` replaces the reply text of forwarded requests (a teacher that
refuses or answers off-format). `chat_requests` counts every chat request that reached the proxy.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from collections.abc import Callable

import httpx


class FaultProxy:
    def __init__(
        self, upstream_base_url: str, *, retry_after: float = 1.0, hang_seconds: float = 3.0, delay: float = 0.0
    ):
        self.upstream = upstream_base_url.rstrip("/")  # e.g. http://127.0.0.1:PORT/v1
        self.faults: deque[str] = deque()
        self.retry_after = retry_after
        self.hang_seconds = hang_seconds
        self.delay = delay  # extra seconds before forwarding (keeps a run in flight long enough to kill)
        self.rewrite: Callable[[dict], str | None] | None = None
        self.chat_requests = 0
        self.in_flight = 0
        self.max_in_flight = 0  # most chat requests forwarded at the same time
        self.applied: list[str] = []  # the fault (or "forward") applied to each chat request, in order
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.base_url = ""

    def start(self) -> FaultProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0), self._loop
        ).result(10)
        port = self._server.sockets[0].getsockname()[1]
        prefix = "/" + self.upstream.split("/", 3)[3] if self.upstream.count("/") >= 3 else ""
        self.base_url = f"http://127.0.0.1:{port}{prefix}"
        return self

    def stop(self) -> None:
        async def close() -> None:
            self._server.close()
            handlers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in handlers:  # connections still open (a hanging fault, keep-alive clients)
                task.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -----------------------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:  # keep-alive: serve requests until the client closes
                request = await _read_request(reader)
                if request is None:
                    break
                keep_open = await self._serve(request, writer)
                if not keep_open:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _serve(self, request: tuple[str, str, dict, bytes], writer: asyncio.StreamWriter) -> bool:
        method, path, headers, body = request
        fault = None
        if method == "POST" and path.endswith("/chat/completions"):
            with self._lock:
                self.chat_requests += 1
                fault = self.faults.popleft() if self.faults else None
                self.applied.append(fault or "forward")
        if fault == "drop":
            writer.transport.abort()
            return False
        if fault == "timeout":
            await asyncio.sleep(self.hang_seconds)
            writer.transport.abort()
            return False
        if fault == "quota":
            error = {
                "error": {
                    "message": "You exceeded your current quota, please check your plan and billing details.",
                    "type": "insufficient_quota",
                    "param": None,
                    "code": "insufficient_quota",
                }
            }
            await _respond(writer, 429, json.dumps(error).encode())
            return True
        if fault in ("429", "500", "401"):
            extra = {"Retry-After": f"{self.retry_after:g}"} if fault == "429" else {}
            error = {"error": {"message": f"injected {fault}", "type": "injected", "code": fault}}
            await _respond(writer, int(fault), json.dumps(error).encode(), extra)
            return True
        if fault == "malformed":
            await _respond(writer, 200, b'{"id": "x", "choices": [{"message": {"content": "From now')
            return True
        if fault == "nochoices":
            await _respond(writer, 200, b'{"id": "x", "object": "chat.completion", "model": "default"}')
            return True
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            status, content = await self._forward(method, path, body)
        finally:
            with self._lock:
                self.in_flight -= 1
        await _respond(writer, status, content)
        return True

    async def _forward(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        origin = self.upstream.split("/", 3)
        url = "/".join(origin[:3]) + path
        async with httpx.AsyncClient(timeout=600) as client:
            r = await client.request(method, url, content=body, headers={"content-type": "application/json"})
        content = r.content
        if self.rewrite is not None and path.endswith("/chat/completions") and r.status_code == 200:
            replacement = self.rewrite(json.loads(body))
            if replacement is not None:
                data = r.json()
                data["choices"][0]["message"]["content"] = replacement
                data["choices"][0]["finish_reason"] = "stop"
                content = json.dumps(data).encode()
        return r.status_code, content


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict, bytes] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return method, path, headers, body


async def _respond(writer: asyncio.StreamWriter, status: int, body: bytes, extra: dict | None = None) -> None:
    reason = {200: "OK", 401: "Unauthorized", 429: "Too Many Requests", 500: "Internal Server Error"}.get(status, "X")
    head = [f"HTTP/1.1 {status} {reason}", "Content-Type: application/json", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in (extra or {}).items()]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
    await writer.drain()
