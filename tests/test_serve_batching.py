"""Continuous batching (selfprompt.generate.batching) against the hf backend's own unbatched generate.

The default model is loaded once in this process; requests run through transformers' continuous
batching loop together and must give, token for token, what the backend gives each one alone under
greedy decoding, with the same finish reason and usage, whether a request is cut by max_tokens, ends
with end-of-sequence, or meets a stop string.
"""

from __future__ import annotations

import asyncio

import pytest

from selfprompt.generate.backends.base import ChatRequest, Sampling
from selfprompt.generate.batching import ContinuousBatcher, Outcome
from selfprompt.records import Message

QUESTIONS = [
    "Why is the sky blue?",
    "What is 2 + 2? Answer with the number only.",
    "Name one fruit, in one word.",
    "Who wrote Hamlet?",
]


def ask(question: str, **sampling) -> ChatRequest:
    return ChatRequest(messages=[Message(role="user", content=question)], sampling=Sampling(**sampling))


@pytest.fixture(scope="module")
def batcher(hf_backend):
    batcher = ContinuousBatcher(hf_backend, max_batch=4, max_tokens=16)
    batcher.start()
    yield batcher
    batcher.close()


async def run_together(batcher: ContinuousBatcher, requests: list[ChatRequest]) -> list[tuple[list[str], Outcome]]:
    async def one(request: ChatRequest) -> tuple[list[str], Outcome]:
        outcome = Outcome()
        pieces = [piece async for piece in batcher.stream(request, outcome)]
        return pieces, outcome

    return await asyncio.gather(*(one(r) for r in requests))


def test_batched_greedy_equals_unbatched(batcher):
    # Different lengths of max_tokens: some replies end with end-of-sequence, some are cut.
    requests = [ask(q, max_tokens=n) for q, n in zip(QUESTIONS, [16, 12, 8, 16])]
    results = asyncio.run(run_together(batcher, requests))
    references = [batcher.generate_alone(r) for r in requests]
    reasons = set()
    for (pieces, outcome), reference in zip(results, references):
        assert "".join(pieces) == outcome.text == reference.text
        assert outcome.finish_reason == reference.finish_reason
        assert outcome.completion_tokens == reference.usage.completion_tokens
        assert outcome.prompt_tokens == reference.usage.prompt_tokens
        reasons.add(outcome.finish_reason)
    assert reasons == {"stop", "length"}, "the questions were chosen so that both endings occur"


def test_a_stop_string_ends_the_reply_like_unbatched(batcher):
    reference = batcher.generate_alone(ask(QUESTIONS[0], max_tokens=16)).text
    stop = reference.split()[3]  # a word from the middle of the reply
    request = ask(QUESTIONS[0], max_tokens=16, stop=[stop])
    [(pieces, outcome)] = asyncio.run(run_together(batcher, [request]))
    unbatched = batcher.generate_alone(request)
    assert "".join(pieces) == outcome.text == unbatched.text == reference[: reference.index(stop)]
    assert outcome.finish_reason == unbatched.finish_reason == "stop"
    assert not any(stop in piece for piece in pieces)


def test_sampled_requests_join_the_batch_with_their_own_settings(batcher):
    """A sampled request shares the batch with greedy ones; the greedy ones stay exact beside it."""
    sampled = ask(QUESTIONS[3], max_tokens=8, temperature=5.0, top_p=1.0)  # hot enough that text drifts at once
    greedy = ask(QUESTIONS[0], max_tokens=8)
    assert batcher.batches(sampled)
    draws = asyncio.run(run_together(batcher, [sampled, sampled, greedy]))
    assert draws[2][1].text == batcher.generate_alone(greedy).text
    assert draws[0][1].completion_tokens > 0 and draws[1][1].completion_tokens > 0
    greedy_text = batcher.generate_alone(ask(QUESTIONS[3], max_tokens=8)).text
    assert {draws[0][1].text, draws[1][1].text} != {greedy_text}, "temperature 5 was applied, not greedy"


def test_the_loop_filters_with_its_own_top_p_and_keeps_the_likeliest_token(batcher):
    """The loop's top-k / top-p are selfprompt's partial-sort ones (tests/test_sampling_filters.py), applied per
    request: a hot request whose top_p leaves one token draws the greedy reply, beside one that drifts."""
    from selfprompt.generate.batching import _cb_warpers

    assert set(_cb_warpers()) <= {type(p) for p in batcher.manager.logit_processor.logits_processor}
    narrow = ask(QUESTIONS[1], max_tokens=8, temperature=5.0, top_p=1e-6)
    wide = ask(QUESTIONS[1], max_tokens=8, temperature=5.0, top_p=1.0)
    draws = asyncio.run(run_together(batcher, [narrow, wide, narrow]))
    greedy_text = batcher.generate_alone(ask(QUESTIONS[1], max_tokens=8)).text
    assert draws[0][1].text == draws[2][1].text == greedy_text
    assert draws[1][1].text != greedy_text, "temperature 5 over the whole vocabulary drifts at once"


def test_seeded_sampling_runs_a_sampled_request_alone_with_its_seed(hf_backend):
    batcher = ContinuousBatcher(hf_backend, max_batch=2, max_tokens=8, seeded_sampling=True)
    batcher.start()
    try:
        request = ask(QUESTIONS[3], max_tokens=8, temperature=0.9, seed=7)
        assert not batcher.batches(request)
        [(pieces, outcome)], [(again, _)] = (asyncio.run(run_together(batcher, [request])) for _ in range(2))
    finally:
        batcher.close()
    assert "".join(pieces) == "".join(again) == hf_backend.generate([request])[0].text
    assert outcome.completion_tokens > 0


def test_a_request_that_cannot_fit_is_refused_and_a_stopped_loop_is_reported(hf_backend):
    from selfprompt.generate.batching import BatchLoopDown, RequestTooLong

    batcher = ContinuousBatcher(hf_backend, max_batch=1, max_tokens=8)
    assert batcher.capacity_tokens == 1088  # one request: 1024 planned prompt tokens + 8, in pages of 64
    assert not batcher.alive()
    with pytest.raises(BatchLoopDown):
        batcher.admit(ask(QUESTIONS[0], max_tokens=8))
    batcher.start()
    try:
        assert batcher.alive()
        with pytest.raises(RequestTooLong, match=r"plus max_tokens \(8\) exceed 1088 tokens"):
            batcher.admit(ask("word " * 1100, max_tokens=8))
        assert len(batcher.admit(ask(QUESTIONS[0], max_tokens=8))) < 64
    finally:
        batcher.close()
    assert not batcher.alive()
    with pytest.raises(BatchLoopDown, match="restart the server"):
        batcher.admit(ask(QUESTIONS[0], max_tokens=8))
