"""The reliable request layer: cache, bounded concurrency, rate limits and retries around any Backend.

Stages that send many requests (the annotate teacher, the pairwise judge) go through
`ReliableClient` instead of calling a backend directly:

* **Persistent cache** (sqlite in WAL mode, crash-safe): keyed by sha256 of the model id, messages,
  sampling, assistant prefix, response format and a caller namespace (e.g. template name+version).
  A rerun sends no request for work already done; a run killed with kill -9 loses at most the
  requests in flight.
* **Bounded concurrency** (`asyncio.Semaphore`) and **requests/tokens-per-minute** token buckets.
* **Retries** with exponential backoff and full jitter on 429, 5xx, timeouts, connection errors and
  malformed bodies, honouring `Retry-After` / `retry-after-ms`. Client errors (400, 401, 404 ...) are
  not retried: repeating them cannot help.
* **Stopping**: an exhausted quota (HTTP 429 with error code `insufficient_quota` and its kin, or
  402) is not a rate limit: no later request can succeed until a person acts. It is never retried,
  and it stops the client at once: no request is sent after it, and every call still waiting fails
  with the same error (`fatal`, `stops_all`, `quota`). Responses already received are in the
  cache, so rerunning once the quota is back loses nothing.

The OpenAI backend is built with `max_retries=0` and lets `openai` exceptions through unchanged, so
the retry policy lives here, once, for every backend. API keys never reach this module.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import json
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from selfprompt.generate.backends.base import Backend, ChatRequest, ChatResponse
from selfprompt.records import Usage

CACHE_SCHEMA = "selfprompt-reliable-cache-v1"
MAX_BACKOFF_SECONDS = 60.0  # the longest sleep between two attempts, Retry-After included
BASE_BACKOFF_SECONDS = 0.5


@dataclass
class ReliableResult:
    response: ChatResponse | None  # None when every attempt failed
    cached: bool
    attempts: int  # requests sent for this call (0 when served from cache)
    error: str | None  # last error text when response is None
    fatal: bool = False  # the error is one no retry can fix (400, 401, 403, 404 ...): a configuration problem
    stops_all: bool = False  # no other request can succeed either (exhausted quota): the client stopped
    quota: bool = False  # the account's quota or credit is exhausted (HTTP 429 insufficient_quota, 402)


@dataclass
class ReliableStats:
    """Counters over the client's lifetime (all calls)."""

    requests_sent: int = 0  # requests handed to the backend, retries included
    cache_hits: int = 0
    retries: int = 0  # attempts after the first, for any retryable failure
    errors: int = 0  # calls that ended without a response
    usage: Usage = field(default_factory=Usage)  # tokens of responses actually received (not cached)

    @property
    def tokens(self) -> int:
        return self.usage.total_tokens

    def as_dict(self) -> dict[str, int]:
        return {
            "requests_sent": self.requests_sent,
            "cache_hits": self.cache_hits,
            "retries": self.retries,
            "errors": self.errors,
            "prompt_tokens": self.usage.prompt_tokens,
            "completion_tokens": self.usage.completion_tokens,
            "tokens": self.tokens,
        }


# ---------------------------------------------------------------------------------------------
# Error classification


@dataclass
class Failure:
    retryable: bool
    message: str
    retry_after: float | None = None  # seconds the server asked us to wait
    stops_all: bool = False  # every later request would fail the same way: stop sending
    quota: bool = False  # quota or credit exhausted


# Error codes (OpenAI's `error.code` / `error.type`, which compatible servers copy) that mean the account
# cannot be served at all until a person acts; a 429 carrying one is not a rate limit.
QUOTA_ERROR_CODES = frozenset(
    {"insufficient_quota", "billing_hard_limit_reached", "billing_not_active", "quota_exceeded"}
)


def error_code(exc: BaseException) -> str | None:
    """The provider's error code of an API error (`insufficient_quota`, ...), if it sent one."""
    candidates = [getattr(exc, "code", None), getattr(exc, "type", None)]
    body = getattr(exc, "body", None)
    if isinstance(body, dict):  # some servers wrap the error object once more than the client unwraps
        inner = body["error"] if isinstance(body.get("error"), dict) else body
        candidates += [inner.get("code"), inner.get("type")]
    texts = [c for c in candidates if isinstance(c, str) and c]
    return next((c for c in texts if c in QUOTA_ERROR_CODES), texts[0] if texts else None)


def classify(exc: BaseException) -> Failure:
    """Decide whether an exception from a backend is worth another attempt, and whether to stop sending."""
    text = f"{type(exc).__name__}: {exc}"
    try:
        import openai
    except ImportError:  # pragma: no cover - openai is a core dependency
        openai = None  # type: ignore[assignment]
    if openai is not None:
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            code = error_code(exc)
            if code in QUOTA_ERROR_CODES or status == 402:
                return Failure(
                    False,
                    f"HTTP {status} {code or 'payment required'}: the quota is exhausted "
                    f"({_short(exc.message)}); waiting cannot fix it: add credit or wait for the quota "
                    "to reset, then rerun the same command (finished work is kept and not asked again)",
                    stops_all=True,
                    quota=True,
                )
            # 408 request timeout, 409 conflict (server busy), 429 rate limit, 5xx server side.
            retryable = status in (408, 409, 429) or status >= 500
            return Failure(retryable, f"HTTP {status}: {_short(exc.message)}", retry_after_seconds(exc.response))
        if isinstance(exc, (openai.APITimeoutError, openai.APIConnectionError)):
            return Failure(True, text)
        if isinstance(exc, openai.APIResponseValidationError):
            return Failure(True, f"malformed response body: {text}")
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError, ConnectionError)):
        return Failure(True, text or "timeout")
    # A body that is not JSON, or JSON without the expected fields, surfaces as one of these from the
    # client library or from the backend reading the reply: a flaky proxy or an overloaded server.
    if isinstance(exc, (json.JSONDecodeError, ValidationError, KeyError, IndexError, TypeError, AttributeError)):
        return Failure(True, f"malformed response: {_short(text)}")
    if type(exc).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore", "h11", "anyio"):
        return Failure(True, _short(text))  # transport-level failure below the openai client
    return Failure(False, _short(text))


def retry_after_seconds(response: Any) -> float | None:
    """Seconds from `retry-after-ms` or `Retry-After` (delta-seconds or HTTP date), if present."""
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    try:
        if (ms := headers.get("retry-after-ms")) is not None:
            return max(0.0, float(ms) / 1000.0)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def backoff_seconds(
    retry_number: int,
    retry_after: float | None,
    *,
    base: float = BASE_BACKOFF_SECONDS,
    maximum: float = MAX_BACKOFF_SECONDS,
) -> float:
    """Full-jitter exponential backoff; a server's Retry-After is a floor, not a suggestion."""
    ceiling = min(maximum, base * (2**retry_number))
    delay = random.uniform(0.0, ceiling)
    if retry_after is not None:
        delay = max(delay, min(retry_after, maximum))
    return delay


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------------------------------------
# Rate limiting


class TokenBucket:
    """Allows `per_minute` units per minute, with bursts up to `burst_seconds` worth (providers
    refill continuously, so a full minute's burst at start-up would trip their limiter).

    `acquire(n)` waits until n units are available. `adjust(delta)` corrects a reservation once the
    true cost is known (estimated tokens vs usage reported); the level may go negative, which
    delays later callers, as a provider's token-per-minute limiter would.
    """

    def __init__(self, per_minute: float, burst_seconds: float = 10.0):
        if per_minute <= 0:
            raise ValueError("a rate limit must be positive")
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate * burst_seconds)
        self.level = self.capacity
        self.updated = time.monotonic()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
        self.updated = now

    async def acquire(self, amount: float) -> None:
        amount = min(amount, self.capacity)  # one oversized request must still be able to go
        async with self._lock:  # first come, first served
            while True:
                self._refill()
                if self.level >= amount:
                    self.level -= amount
                    return
                await asyncio.sleep((amount - self.level) / self.rate)

    def adjust(self, delta: float) -> None:
        self._refill()
        self.level = min(self.capacity, self.level - delta)


def estimate_tokens(request: ChatRequest) -> int:
    """Rough upper-side estimate for rate limiting: ~4 characters per token plus max_tokens."""
    chars = sum(len(m.content) for m in request.messages) + len(request.assistant_prefix)
    return chars // 4 + 4 * len(request.messages) + request.sampling.max_tokens


# ---------------------------------------------------------------------------------------------
# Cache


def cache_key(model_id: str, request: ChatRequest, namespace: str = "") -> str:
    payload = {
        "schema": CACHE_SCHEMA,
        "model": model_id,
        "namespace": namespace,
        "messages": [m.model_dump() for m in request.messages],
        "sampling": request.sampling.model_dump(),
        "assistant_prefix": request.assistant_prefix,
        "response_format": request.response_format,
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResponseCache:
    """sqlite (WAL) key -> ChatResponse JSON. Safe across processes and against kill -9."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30.0, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a crash may lose the last commit, never corrupts
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, response TEXT NOT NULL, created REAL NOT NULL)"
        )

    def get(self, key: str) -> ChatResponse | None:
        with self._lock:
            row = self._db.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        try:
            return ChatResponse.model_validate_json(row[0])
        except ValidationError:
            return None  # written by an incompatible version: treat as a miss, it will be overwritten

    def put(self, key: str, response: ChatResponse) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO responses (key, response, created) VALUES (?, ?, ?)",
                (key, response.model_dump_json(), time.time()),
            )

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()


# ---------------------------------------------------------------------------------------------
# The client


class ReliableClient:
    """Cached, rate-limited, retrying access to one backend. See the module docstring."""

    def __init__(
        self,
        backend: Backend,
        *,
        cache_path: str | Path | None,
        concurrency: int = 8,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        max_retries: int = 6,
        request_timeout: float | None = None,
        cache_namespace: str = "",
        backoff_base: float = BASE_BACKOFF_SECONDS,
        backoff_max: float = MAX_BACKOFF_SECONDS,
    ):
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.backend = backend
        self.cache = ResponseCache(cache_path) if cache_path is not None else None
        self.concurrency = concurrency
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self.max_retries = max_retries
        self.request_timeout = request_timeout
        self.cache_namespace = cache_namespace
        self.backoff_base = backoff_base  # first retry waits up to this many seconds, doubling each time
        self.backoff_max = backoff_max  # cap on one wait, Retry-After included
        self.stats = ReliableStats()
        self.stopped: Failure | None = None  # set by a failure no request can escape; nothing is sent after it
        # asyncio primitives bind to the loop that first uses them; (re)made per loop in _limits().
        self._loop: asyncio.AbstractEventLoop | None = None

    def _limits(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is self._loop:
            return
        self._loop = loop
        self._semaphore = asyncio.Semaphore(self.concurrency)
        self._rpm = TokenBucket(self.requests_per_minute) if self.requests_per_minute else None
        self._tpm = TokenBucket(self.tokens_per_minute) if self.tokens_per_minute else None

    def key(self, request: ChatRequest) -> str:
        return cache_key(self.backend.model_id, request, self.cache_namespace)

    def cached(self, request: ChatRequest) -> ChatResponse | None:
        return self.cache.get(self.key(request)) if self.cache is not None else None

    async def generate(self, request: ChatRequest) -> ReliableResult:
        """One request: from cache, or sent with retries. Never raises for backend failures."""
        self._limits()
        key = self.key(request)
        if self.cache is not None and (hit := self.cache.get(key)) is not None:
            self.stats.cache_hits += 1
            return ReliableResult(hit, cached=True, attempts=0, error=None)
        async with self._semaphore:
            result = self._stopped_result(0) or await self._send_with_retries(request)
        if result.response is not None and self.cache is not None:
            self.cache.put(key, result.response)
        elif result.response is None:
            self.stats.errors += 1
        return result

    async def _send_with_retries(self, request: ChatRequest) -> ReliableResult:
        estimate = estimate_tokens(request)
        error = "no attempt made"
        for attempt in range(self.max_retries + 1):
            if attempt:
                self.stats.retries += 1
            await self._wait_for_rate_limits(estimate)
            if stopped := self._stopped_result(attempt):  # another call hit a stopping failure meanwhile
                return stopped
            self.stats.requests_sent += 1
            try:
                response = await self._send_once(request)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - classify() decides; nothing escapes as a crash
                failure = classify(exc)
                error = failure.message
                if failure.stops_all and self.stopped is None:
                    self.stopped = failure
                if not failure.retryable or attempt == self.max_retries:
                    return ReliableResult(
                        None,
                        cached=False,
                        attempts=attempt + 1,
                        error=error,
                        fatal=not failure.retryable,
                        stops_all=failure.stops_all,
                        quota=failure.quota,
                    )
                await asyncio.sleep(
                    backoff_seconds(attempt, failure.retry_after, base=self.backoff_base, maximum=self.backoff_max)
                )
                continue
            self.stats.usage = self.stats.usage + response.usage
            if self._tpm is not None and response.usage.total_tokens:
                self._tpm.adjust(response.usage.total_tokens - estimate)
            return ReliableResult(response, cached=False, attempts=attempt + 1, error=None)
        return ReliableResult(None, cached=False, attempts=self.max_retries + 1, error=error)

    def _stopped_result(self, attempts: int) -> ReliableResult | None:
        if self.stopped is None:
            return None
        return ReliableResult(
            None,
            cached=False,
            attempts=attempts,
            error=self.stopped.message,
            fatal=True,
            stops_all=True,
            quota=self.stopped.quota,
        )

    async def _wait_for_rate_limits(self, estimated_tokens: int) -> None:
        if self._rpm is not None:
            await self._rpm.acquire(1)
        if self._tpm is not None:
            await self._tpm.acquire(estimated_tokens)

    async def _send_once(self, request: ChatRequest) -> ChatResponse:
        call = self.backend.agenerate(request)
        response = await (asyncio.wait_for(call, self.request_timeout) if self.request_timeout else call)
        if not isinstance(response, ChatResponse):
            raise TypeError(f"backend returned {type(response).__name__}, not ChatResponse")
        return response

    def generate_many(
        self, requests: Sequence[ChatRequest], on_result: Callable[[ReliableResult], None] | None = None
    ) -> list[ReliableResult]:
        """Synchronous convenience: all requests concurrently (bounded), results in request order.

        `on_result` hears of each result as it arrives (in completion order), e.g. to show progress."""

        async def one(request: ChatRequest) -> ReliableResult:
            result = await self.generate(request)
            if on_result is not None:
                on_result(result)
            return result

        async def run_all() -> list[ReliableResult]:
            try:
                return list(await asyncio.gather(*(one(r) for r in requests)))
            finally:
                await self.backend.aclose()

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(run_all())
        # Called from inside a running loop (a notebook, an async server): run on a private loop.
        box: list[list[ReliableResult]] = []
        thread = threading.Thread(target=lambda: box.append(asyncio.run(run_all())))
        thread.start()
        thread.join()
        return box[0]

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()
