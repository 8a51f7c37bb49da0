"""The reliable request layer against llama.cpp's real OpenAI-compatible server behind a fault-injecting proxy."""

from __future__ import annotations

import asyncio
import time

import pytest

from selfprompt.generate.backends import ChatRequest, Sampling, get_backend
from selfprompt.generate.reliable import ReliableClient, TokenBucket, cache_key, retry_after_seconds
from selfprompt.records import Message

from faultproxy import FaultProxy

# Tests that use the llama_server fixture skip cleanly without the llamacpp extra.


def tiny_request(text: str = "Say hello.", max_tokens: int = 4) -> ChatRequest:
    return ChatRequest(messages=[Message(role="user", content=text)], sampling=Sampling(max_tokens=max_tokens))


@pytest.fixture
def proxy(llama_server):
    with FaultProxy(llama_server, retry_after=1.0, hang_seconds=10.0) as p:
        yield p


@pytest.fixture
def backend(proxy):
    b = get_backend("openai", model="default", base_url=proxy.base_url, api_key_env="SELFPROMPT_TEST_NO_KEY")
    yield b
    b.close()


def client_for(backend, tmp_path, **kw) -> ReliableClient:
    kw.setdefault("backoff_base", 0.05)
    return ReliableClient(backend, cache_path=tmp_path / "cache.sqlite", **kw)


@pytest.mark.llamacpp
def test_every_transient_fault_is_retried_until_a_real_reply(proxy, backend, tmp_path):
    backend.generate([tiny_request()])  # warm the server's prompt cache so the final real reply beats the timeout
    proxy.chat_requests, proxy.applied = 0, []
    proxy.faults.extend(["429", "500", "malformed", "nochoices", "drop", "timeout"])
    client = client_for(backend, tmp_path, max_retries=6, request_timeout=8.0)
    started = time.monotonic()
    [result] = client.generate_many([tiny_request()])
    assert result.error is None and result.response is not None
    assert result.response.text and result.response.usage.completion_tokens > 0  # the real server answered
    assert result.attempts == 7 and proxy.chat_requests == 7
    assert proxy.applied == ["429", "500", "malformed", "nochoices", "drop", "timeout", "forward"]
    assert client.stats.retries == 6 and client.stats.requests_sent == 7
    assert time.monotonic() - started >= 1.0 + 8.0  # waited out Retry-After: 1 and the 8 s timeout


@pytest.mark.llamacpp
def test_client_errors_are_not_retried_and_exhausted_retries_report_the_last_error(proxy, backend, tmp_path):
    proxy.faults.extend(["401", "500", "500", "500"])
    client = client_for(backend, tmp_path, max_retries=2)
    unauthorized, server_down = client.generate_many([tiny_request("a"), tiny_request("b")])
    assert unauthorized.response is None and unauthorized.fatal and unauthorized.attempts == 1
    assert "401" in unauthorized.error
    assert server_down.response is None and not server_down.fatal and server_down.attempts == 3
    assert "HTTP 500" in server_down.error
    assert proxy.chat_requests == 4 and client.stats.errors == 2


@pytest.mark.llamacpp
def test_cache_persists_across_clients_and_keys_on_namespace(proxy, backend, tmp_path):
    first = client_for(backend, tmp_path, cache_namespace="tpl-v1")
    [a] = first.generate_many([tiny_request()])
    first.close()
    assert not a.cached and proxy.chat_requests == 1

    again = client_for(backend, tmp_path, cache_namespace="tpl-v1")  # a new process would do the same
    [b] = again.generate_many([tiny_request()])
    assert b.cached and b.attempts == 0 and b.response == a.response
    assert proxy.chat_requests == 1 and again.stats.cache_hits == 1 and again.stats.requests_sent == 0

    other = client_for(backend, tmp_path, cache_namespace="tpl-v2")
    [c] = other.generate_many([tiny_request()])
    assert not c.cached and proxy.chat_requests == 2
    assert cache_key("default", tiny_request(), "x") != cache_key("default", tiny_request(max_tokens=5), "x")


@pytest.mark.llamacpp
def test_concurrency_is_bounded_at_the_server(proxy, backend, tmp_path):
    proxy.delay = 0.3
    client = client_for(backend, tmp_path, concurrency=2)
    results = client.generate_many([tiny_request(f"Count to {i}.", max_tokens=2) for i in range(6)])
    assert all(r.response is not None for r in results)
    assert proxy.max_in_flight == 2


def test_token_bucket_spaces_requests():
    async def take(n: int) -> float:
        bucket = TokenBucket(per_minute=600, burst_seconds=0.1)  # 10 per second, burst of 1
        started = time.monotonic()
        for _ in range(n):
            await bucket.acquire(1)
        return time.monotonic() - started

    assert asyncio.run(take(6)) >= 0.45


def test_retry_after_header_forms():
    class R:
        def __init__(self, headers):
            self.headers = headers

    assert retry_after_seconds(R({"retry-after": "3"})) == 3.0
    assert retry_after_seconds(R({"retry-after-ms": "250"})) == 0.25
    assert retry_after_seconds(R({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0.0  # a date in the past
    assert retry_after_seconds(R({})) is None


def test_in_process_backend_works_through_the_same_client(hf_backend, tmp_path):
    client = ReliableClient(hf_backend, cache_path=tmp_path / "cache.sqlite", concurrency=4)
    requests = [tiny_request("Name a colour.", max_tokens=3), tiny_request("Name a fruit.", max_tokens=3)]
    first = client.generate_many(requests)
    assert all(r.response is not None and r.response.text and not r.cached for r in first)
    again = client.generate_many(requests)
    assert [r.response for r in again] == [r.response for r in first] and all(r.cached for r in again)
    assert client.stats.requests_sent == 2 and client.stats.cache_hits == 2


@pytest.mark.llamacpp
def test_exhausted_quota_stops_at_once_and_a_later_client_resumes(proxy, backend, tmp_path):
    """HTTP 429 `insufficient_quota` is not a rate limit: no retry, no further request, a clear error."""
    proxy.faults.extend(["forward"] + ["quota"] * 20)  # the quota runs out after one request, and stays out
    client = client_for(backend, tmp_path, concurrency=1, max_retries=6)
    results = client.generate_many([tiny_request(f"Say {w}.") for w in ("one", "two", "three", "four")])
    assert results[0].response is not None and not results[0].cached
    assert proxy.applied == ["forward", "quota"]  # the first quota reply stopped the run: nothing else was sent
    for r in results[1:]:
        assert r.response is None and r.fatal and r.stops_all and r.quota
        assert "insufficient_quota" in r.error and "quota is exhausted" in r.error and "rerun" in r.error
    assert results[1].attempts == 1 and results[2].attempts == results[3].attempts == 0
    assert client.stats.retries == 0 and client.stats.errors == 3
    client.close()

    proxy.faults.clear()  # quota is back: a new run sends only what is missing
    again = client_for(backend, tmp_path, concurrency=1)
    resumed = again.generate_many([tiny_request(f"Say {w}.") for w in ("one", "two", "three", "four")])
    assert resumed[0].cached and resumed[0].response == results[0].response
    assert all(r.response is not None and not r.cached for r in resumed[1:])
    assert again.stats.requests_sent == 3 and proxy.chat_requests == 2 + 3


def test_quota_errors_stop_and_rate_limits_are_retried():
    import httpx
    import openai

    from selfprompt.generate.reliable import classify

    def status_error(status: int, body: dict) -> openai.APIStatusError:
        request = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")
        response = httpx.Response(status, json={"error": body}, request=request)
        cls = {401: openai.AuthenticationError, 429: openai.RateLimitError}.get(status, openai.APIStatusError)
        return cls(body.get("message", "x"), response=response, body=body)

    quota = classify(
        status_error(
            429,
            {"message": "You exceeded your current quota", "type": "insufficient_quota", "code": "insufficient_quota"},
        )
    )
    assert not quota.retryable and quota.stops_all and quota.quota and "insufficient_quota" in quota.message
    billing = classify(status_error(429, {"message": "Billing hard limit", "code": "billing_hard_limit_reached"}))
    assert billing.quota and billing.stops_all and not billing.retryable
    assert classify(status_error(402, {"message": "Payment required"})).quota
    rate = classify(status_error(429, {"message": "Rate limit reached", "code": "rate_limit_exceeded"}))
    assert rate.retryable and not rate.stops_all and not rate.quota
    key = classify(status_error(401, {"message": "Incorrect API key", "code": "invalid_api_key"}))
    assert not key.retryable and not key.quota
    bad_request = classify(status_error(400, {"message": "context length exceeded"}))
    assert not bad_request.retryable and not bad_request.stops_all  # one request's problem: the others go on
