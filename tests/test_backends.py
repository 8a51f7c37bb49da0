"""The three backends on the real default model: hf, llamacpp in-process, openai against llama.cpp's server."""

from __future__ import annotations

import asyncio
import json

import pytest

from selfprompt.errors import ConfigError
from selfprompt.generate.backends import ChatRequest, Sampling, get_backend
from selfprompt.generate.backends.hf import render_prompt
from selfprompt.records import Message

from conftest import free_port

# Questions with long answers, so that a few max_tokens always cut the output ("length").
QUESTIONS = [
    "Write a poem about the sea.",
    "Explain in detail how a car engine works.",
    "Tell me a story about a dragon.",
]


def req(question: str, max_tokens: int = 10, **sampling) -> ChatRequest:
    return ChatRequest(
        messages=[Message(role="user", content=question)], sampling=Sampling(max_tokens=max_tokens, **sampling)
    )


def stop_inside(text: str) -> tuple[str, str]:
    """A stop string taken from the middle of a real output, and the text expected before it."""
    word = text.split()[2]
    return word, text[: text.find(word)]


@pytest.fixture(scope="module")
def llamacpp_backend(default_model):
    pytest.importorskip("llama_cpp", reason="needs the llamacpp extra")
    backend = get_backend("llamacpp", model=default_model, n_ctx=1024)
    yield backend
    backend.close()


@pytest.mark.slow
def test_hf_batch_keeps_order_and_matches_single(hf_backend):
    batched = hf_backend.generate([req(q, 6) for q in QUESTIONS])
    single = hf_backend.generate([req(QUESTIONS[1], 6)])[0]
    assert batched[1].text == single.text  # left padding does not change a row's greedy output
    assert all(b.finish_reason == "length" and b.usage.completion_tokens == 6 for b in batched)
    assert batched[0].usage.prompt_tokens < batched[1].usage.prompt_tokens  # per-row counts, padding excluded


@pytest.mark.slow
def test_hf_stop_strings_and_stream(hf_backend):
    full = "".join(hf_backend.stream(req(QUESTIONS[0], 8)))
    assert full == hf_backend.generate([req(QUESTIONS[0], 8)])[0].text
    stop, before = stop_inside(full)
    stopped = hf_backend.generate([req(QUESTIONS[0], 8, stop=[stop])])[0]
    assert (stopped.text, stopped.finish_reason) == (before, "stop")
    pieces = list(hf_backend.stream(req(QUESTIONS[0], 8, stop=[stop])))
    assert "".join(pieces) == before and len(pieces) > 1


@pytest.mark.slow
def test_hf_prefill_is_not_part_of_the_text(hf_backend):
    request = req("Why is the sky blue?", 6).model_copy(update={"assistant_prefix": "<role>\nFrom now on, you are"})
    prompt = render_prompt(hf_backend.tokenizer, request)
    assert prompt.endswith("<|im_start|>assistant\n<role>\nFrom now on, you are")
    text = hf_backend.generate([request])[0].text
    assert text and not text.startswith("<role>")


@pytest.mark.slow
@pytest.mark.llamacpp
def test_llamacpp_same_prompt_as_hf_and_streams(llamacpp_backend, hf_backend):
    request = req(QUESTIONS[1], 12).model_copy(update={"assistant_prefix": "The"})
    assert llamacpp_backend.render(request) == render_prompt(hf_backend.tokenizer, request)
    out = llamacpp_backend.generate([request])[0]
    hf_out = hf_backend.generate([request])[0]
    assert out.usage.prompt_tokens == hf_out.usage.prompt_tokens  # same template, same tokenizer
    assert (out.finish_reason, out.usage.completion_tokens) == ("length", 12) and out.text
    assert "".join(llamacpp_backend.stream(request)) == out.text
    stop, before = stop_inside(out.text)
    stopped = llamacpp_backend.generate(
        [request.model_copy(update={"sampling": Sampling(max_tokens=12, stop=[stop])})]
    )[0]
    assert (stopped.text, stopped.finish_reason) == (before, "stop")


VERDICT_SCHEMA = {
    "type": "object",
    "properties": {"pick": {"type": "string", "enum": ["left", "right"]}},
    "required": ["pick"],
    "additionalProperties": False,
}


@pytest.mark.llamacpp
@pytest.mark.parametrize(
    "response_format",
    [
        {"type": "json_schema", "json_schema": {"name": "pick", "strict": True, "schema": VERDICT_SCHEMA}},  # OpenAI's
        {"type": "json_object", "schema": VERDICT_SCHEMA},  # llama-cpp-python's own spelling
    ],
)
def test_llamacpp_response_format_constrains_the_reply(llamacpp_backend, response_format):
    """Unconstrained, the 135M model answers in prose; with a schema, llama.cpp's grammar allows only it."""
    question = [Message(role="user", content="Left or right? Say which and why.")]
    sampling = Sampling(max_tokens=40, temperature=0.0)
    free = llamacpp_backend.generate([ChatRequest(messages=question, sampling=sampling)])[0].text
    with pytest.raises(json.JSONDecodeError):
        json.loads(free)
    constrained = ChatRequest(messages=question, sampling=sampling, response_format=response_format)
    reply = llamacpp_backend.generate([constrained])[0]
    assert json.loads(reply.text)["pick"] in ("left", "right") and set(json.loads(reply.text)) == {"pick"}
    assert json.loads("".join(llamacpp_backend.stream(constrained))) == json.loads(reply.text)


def test_hf_refuses_a_response_format_it_cannot_honour(hf_backend):
    request = ChatRequest(
        messages=[Message(role="user", content="hi")],
        sampling=Sampling(max_tokens=4),
        response_format={"type": "json_object"},
    )
    with pytest.raises(ConfigError, match="cannot constrain"):
        hf_backend.generate([request])
    with pytest.raises(ConfigError, match="cannot constrain"):
        list(hf_backend.stream(request))


@pytest.mark.slow
@pytest.mark.llamacpp
def test_openai_backend_against_llama_server(llama_server):
    backend = get_backend("openai", model="default", base_url=llama_server)
    assert backend.model_id == "default"
    outs = backend.generate([req(q, 4) for q in QUESTIONS[:2]])  # sent concurrently
    assert all(o.text and o.finish_reason == "length" and o.usage.completion_tokens == 4 for o in outs)
    assert outs[0].usage.prompt_tokens > 0 and outs[0].model
    assert "".join(backend.stream(req(QUESTIONS[0], 4))) == outs[0].text
    async_out = asyncio.run(backend.agenerate(req(QUESTIONS[1], 4)))
    assert async_out.text == outs[1].text
    backend.close()


def test_openai_errors_propagate_unchanged():
    import openai

    backend = get_backend("openai", model="m", base_url=f"http://127.0.0.1:{free_port()}/v1", timeout=5)
    with pytest.raises(openai.APIConnectionError):
        backend.generate([req("hi")])
    with pytest.raises(openai.APIConnectionError):
        asyncio.run(backend.agenerate(req("hi")))


def test_openai_key_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        get_backend("openai", model="gpt-4o-mini")  # OpenAI itself needs a key
    monkeypatch.setenv("MY_TEACHER_KEY", "sk-test-secret-123")
    backend = get_backend("openai", model="gpt-4o-mini", api_key_env="MY_TEACHER_KEY")
    assert backend.client.api_key == "sk-test-secret-123" and "secret" not in repr(backend)
    local = get_backend("openai", model="default", base_url="http://127.0.0.1:8000/v1")
    assert local.client.api_key == "sk-no-key"


def test_unknown_backend():
    with pytest.raises(ConfigError, match="hf, llamacpp, openai"):
        get_backend("vllm")
