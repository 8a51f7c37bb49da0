"""`selfprompt serve`: the real CLI on loopback, answered through the official openai client.

The stream parser's deltas are checked on their own over every way a real model's text can arrive in pieces; the
server is then started as a subprocess (`selfprompt serve --backend hf`, default model) and must
return answer and role apart, streaming and not, agreeing with each other.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from selfprompt.format import DEFAULT_FORMAT, StreamParser
from selfprompt.generate.serve import as_deltas

from conftest import background_server, free_port

pytest.importorskip("fastapi")
openai = pytest.importorskip("openai")


def stream_through_parser(text: str, cuts: list[int]) -> tuple[dict, str]:
    """Feed `text` cut at `cuts`; return the role delta and the joined answer content."""
    parser = StreamParser(DEFAULT_FORMAT)
    bounds = [0, *sorted(set(c for c in cuts if 0 < c < len(text))), len(text)]
    deltas = []
    for start, end in zip(bounds, bounds[1:]):
        deltas += as_deltas(parser.feed(text[start:end]))
    deltas += as_deltas(parser.finish())
    role_deltas = [d for d in deltas if "role_prompt" in d]
    assert len(role_deltas) == 1, "the role goes out exactly once"
    assert deltas.index(role_deltas[0]) == 0, "the role comes before any answer text"
    return role_deltas[0], "".join(d.get("content", "") for d in deltas)


@settings(max_examples=150, deadline=None)
@given(role=st.text(max_size=60), answer=st.text(max_size=80), cuts=st.lists(st.integers(0, 200), max_size=12))
def test_stream_recovers_role_and_answer_from_any_chunking(role, answer, cuts):
    text = DEFAULT_FORMAT.render(role, answer)
    role_delta, content = stream_through_parser(text, cuts)
    assert role_delta["role_prompt"] == role
    assert role_delta["format_held"] is True
    assert content == answer


# What the default (untuned) model and half-tuned models really emit.
REAL_SHAPES = [
    "The sky is blue because of Rayleigh scattering.\n\nShorter wavelengths scatter more.",
    "From now on, you are an expert physicist who explains optics.\n\nThe sky looks blue because ...",
    "<role>\nFrom now on, you are a chef with thirty years of experience.",  # cut by max_tokens
    "  <role>You are a historian.</role>  The war ended in 1945.\n\nIt began in 1939. ",
    "You are the best",  # ends while it may still be a role
    "<ro",
    "",
]


@pytest.mark.parametrize("text", REAL_SHAPES)
@pytest.mark.parametrize("step", [1, 3, 7, 1000])
def test_stream_agrees_with_parse_on_real_shapes(text, step):
    role_delta, content = stream_through_parser(text, list(range(step, len(text), step)))
    parsed = DEFAULT_FORMAT.parse(text)
    assert role_delta["role_prompt"] == parsed.role
    assert (role_delta["format_held"], role_delta["format_problem"]) == (parsed.held, parsed.problem)
    assert content == parsed.answer


SERVE_LOG: list[Path] = []


@pytest.fixture(scope="module")
def serve_url(default_model, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    cmd = [
        str(Path(sys.executable).parent / "selfprompt"),
        "serve",
        "--model",
        "default",
        "--backend",
        "hf",
        "--port",
        str(port),
        "--served-name",
        "sp-test",
        "--max-tokens",
        "24",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    try:
        with background_server(cmd, f"http://127.0.0.1:{port}/health", log, timeout=180, env=env):
            SERVE_LOG.append(log)
            yield f"http://127.0.0.1:{port}/v1"
    finally:
        print(Path(log).read_text()[-2000:])


QUESTION = [{"role": "user", "content": "Why is the sky blue?"}]


def test_openai_client_non_streaming_and_streaming_agree(serve_url):
    client = openai.OpenAI(base_url=serve_url, api_key="unused", max_retries=0)
    assert [m.id for m in client.models.list().data] == ["sp-test"]

    done = client.chat.completions.create(model="sp-test", messages=QUESTION, max_tokens=24, temperature=0)
    message = done.choices[0].message
    extra = message.model_extra
    assert {"role_prompt", "format_held", "format_problem"} <= set(extra)
    assert message.content.strip(), "the answer is never empty for this question"
    assert done.usage.completion_tokens > 0
    # The untuned default writes no tagged role: the server must say the format did not hold.
    assert extra["format_held"] is False and extra["format_problem"] is not None

    chunks = list(
        client.chat.completions.create(model="sp-test", messages=QUESTION, max_tokens=24, temperature=0, stream=True)
    )
    role_chunks = [c for c in chunks if "role_prompt" in (c.choices[0].delta.model_extra or {})]
    assert len(role_chunks) == 1
    assert role_chunks[0].choices[0].delta.model_extra["role_prompt"] == extra["role_prompt"]
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert streamed.rstrip() == message.content.rstrip(), "greedy: stream and non-stream give the same answer"
    # Cut at max_tokens, the stream says so as the non-streamed reply does.
    assert chunks[-1].choices[0].finish_reason == done.choices[0].finish_reason == "length"


def test_forced_role_comes_back_apart_from_the_answer(serve_url):
    """`role_prompt` in the request prefills a role: the model continues after it, the server splits."""
    client = openai.OpenAI(base_url=serve_url, api_key="unused", max_retries=0)
    role = "From now on, you are an expert in atmospheric physics."
    done = client.chat.completions.create(
        model="sp-test", messages=QUESTION, max_tokens=24, temperature=0, extra_body={"role_prompt": role}
    )
    extra = done.choices[0].message.model_extra
    assert extra["role_prompt"] == role and extra["format_held"] is True
    assert "<role>" not in done.choices[0].message.content and done.choices[0].message.content.strip()

    chunks = list(
        client.chat.completions.create(
            model="sp-test",
            messages=QUESTION,
            max_tokens=24,
            temperature=0,
            stream=True,
            extra_body={"role_prompt": role},
        )
    )
    first = next(c for c in chunks if "role_prompt" in (c.choices[0].delta.model_extra or {}))
    assert first.choices[0].delta.model_extra["role_prompt"] == role
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert streamed.rstrip() == done.choices[0].message.content.rstrip()


@pytest.mark.parametrize(
    "messages, param",
    [
        ([{"role": "user", "content": ""}], "messages[0].content"),
        ([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "  \n\t"}], "messages[1].content"),
        ([{"role": "system", "content": "Be brief."}], "messages"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_an_empty_question_is_refused_with_an_openai_style_400(serve_url, messages, param, stream):
    import httpx

    raw = httpx.post(
        f"{serve_url}/chat/completions", json={"model": "sp-test", "messages": messages, "stream": stream}, timeout=60
    )
    assert raw.status_code == 400
    error = raw.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param and error["message"].startswith(param)
    client = openai.OpenAI(base_url=serve_url, api_key="unused", max_retries=0)
    with pytest.raises(openai.BadRequestError, match="question"):
        client.chat.completions.create(model="sp-test", messages=messages, max_tokens=4, stream=stream)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": "Hi"}], "temperature": -1}, "temperature"),
        ({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 0}, "max_tokens"),
        ({"messages": [{"role": "wizard", "content": "Hi"}]}, "messages[0].role"),
        ({"model": "sp-test"}, "messages"),
    ],
)
def test_a_malformed_body_is_an_openai_style_400_naming_the_field(serve_url, body, param):
    import httpx

    raw = httpx.post(f"{serve_url}/chat/completions", json=body, timeout=60)
    assert raw.status_code == 400  # not FastAPI's 422: clients raise their usual BadRequestError
    error = raw.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert error["message"].startswith(f"{param}: ")
    client = openai.OpenAI(base_url=serve_url, api_key="unused", max_retries=0)
    kwargs = {"messages": [], **{k: v for k, v in body.items() if k != "model"}}
    with pytest.raises(openai.BadRequestError, match=re.escape(param)):
        client.chat.completions.create(model="sp-test", **kwargs)


def test_the_server_says_where_it_listens_on_stderr(serve_url):
    lines = [line for line in SERVE_LOG[-1].read_text().splitlines() if "listening on" in line]
    assert lines == [f"selfprompt serve: listening on {serve_url} (model sp-test)"]


@pytest.mark.parametrize("stream", [False, True])
def test_finish_reason_is_length_when_max_tokens_cuts_and_stop_otherwise(serve_url, stream):
    client = openai.OpenAI(base_url=serve_url, api_key="unused", max_retries=0)
    short = [{"role": "user", "content": "What is 2 + 2? Answer with the number only."}]
    reasons = []
    for messages, max_tokens in [(QUESTION, 3), (short, 24)]:
        reply = client.chat.completions.create(
            model="sp-test", messages=messages, max_tokens=max_tokens, temperature=0, stream=stream
        )
        chunks = list(reply) if stream else [reply]
        reasons.append(chunks[-1].choices[0].finish_reason)
        if stream:  # exactly one chunk carries the finish reason, and it is the last
            assert [c.choices[0].finish_reason is not None for c in chunks].count(True) == 1
    assert reasons == ["length", "stop"]


CONCURRENT_QUESTIONS = [
    "Why is the sky blue?",
    "What is 2 + 2?",
    "Name a fruit that is yellow.",
    "Who wrote Hamlet?",
    "What is the capital of France?",
    "How many legs does a spider have?",
    "What colour is grass?",
    "Give me a synonym for happy.",
    "What is the boiling point of water?",
    "Name a planet in our solar system.",
    "What do bees make?",
    "How many days are in a week?",
    "What is the opposite of cold?",
    "Which animal says moo?",
    "What is H2O?",
    "Translate 'hello' into French.",
]


def test_sixteen_concurrent_streams_each_get_their_own_complete_answer(serve_url):
    """16 clients stream at once (one batch); each stream is whole, in order, and only its own request's
    tokens: under greedy decoding it equals the same request answered alone, not streamed."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    assert len(set(CONCURRENT_QUESTIONS)) == 16
    client = openai.OpenAI(base_url=serve_url, api_key="unused", max_retries=0)
    start = threading.Barrier(len(CONCURRENT_QUESTIONS))

    def stream(question: str):
        start.wait()  # all requests arrive together, so they share the batch
        reply = client.chat.completions.create(
            model="sp-test",
            messages=[{"role": "user", "content": question}],
            max_tokens=12,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
        return list(reply)

    with ThreadPoolExecutor(len(CONCURRENT_QUESTIONS)) as pool:
        streamed = list(pool.map(stream, CONCURRENT_QUESTIONS))

    texts = set()
    for question, chunks in zip(CONCURRENT_QUESTIONS, streamed):
        alone = client.chat.completions.create(
            model="sp-test", messages=[{"role": "user", "content": question}], max_tokens=12, temperature=0
        )
        assert len({c.id for c in chunks}) == 1, "one reply id per stream"
        *chunks, last = chunks  # include_usage: a last chunk with no choices carries the usage
        assert not last.choices and last.usage.completion_tokens == alone.usage.completion_tokens, question
        assert chunks[-1].choices[0].finish_reason == alone.choices[0].finish_reason, question
        assert all(c.choices[0].finish_reason is None for c in chunks[:-1]), question
        text = "".join(c.choices[0].delta.content or "" for c in chunks)
        assert text == alone.choices[0].message.content, question
        texts.add(text)
    assert len(texts) == 16, "different questions, different answers: no stream got another's text"


@pytest.mark.parametrize("stream", [False, True])
def test_a_prompt_too_long_for_the_server_is_a_400_and_the_server_keeps_answering(serve_url, stream):
    import httpx

    client = openai.OpenAI(base_url=serve_url, api_key="unused", max_retries=0, timeout=120)
    huge = [{"role": "user", "content": "word " * 9000}]  # over the model's 8192-token context
    with pytest.raises(openai.BadRequestError, match=r"exceed \d+ tokens"):
        client.chat.completions.create(model="sp-test", messages=huge, max_tokens=4, stream=stream)
    assert httpx.get(serve_url.removesuffix("/v1") + "/health", timeout=10).status_code == 200
    reply = client.chat.completions.create(model="sp-test", messages=QUESTION, max_tokens=4)
    assert reply.choices[0].message.content and reply.choices[0].finish_reason == "length"


@pytest.mark.parametrize(
    ("limits", "param"),
    [
        ({"max_tokens": 100000}, "max_tokens"),
        ({"max_completion_tokens": 100000}, "max_completion_tokens"),
        ({"max_tokens": 2, "max_completion_tokens": 100000}, "max_completion_tokens"),  # the one the server takes
    ],
)
def test_a_token_limit_too_large_for_the_server_is_named_as_the_client_set_it(serve_url, limits, param):
    client = openai.OpenAI(base_url=serve_url, api_key="unused", max_retries=0, timeout=120)
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="sp-test", messages=QUESTION, **limits)
    assert err.value.param == param
    assert re.search(rf"plus {param} \(100000\) exceed \d+ tokens", err.value.message), err.value.message


def test_a_prompt_that_alone_fills_the_server_blames_the_messages_whatever_the_limit(serve_url):
    client = openai.OpenAI(base_url=serve_url, api_key="unused", max_retries=0, timeout=120)
    huge = [{"role": "user", "content": "word " * 9000}]  # over the model's 8192-token context
    with pytest.raises(openai.BadRequestError, match=r"plus max_completion_tokens \(1\) exceed") as err:
        client.chat.completions.create(model="sp-test", messages=huge, max_completion_tokens=1)
    assert err.value.param == "messages"


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "text/json", "application/x-json", None]
)
def test_a_body_not_sent_as_json_is_told_the_header_to_send(serve_url, content_type):
    import httpx

    body = json.dumps({"messages": QUESTION, "max_tokens": 1}).encode()
    headers = {} if content_type is None else {"Content-Type": content_type}
    raw = httpx.post(f"{serve_url}/chat/completions", content=body, headers=headers, timeout=60)
    assert raw.status_code == 400
    error = raw.json()["error"]
    got = f"got {content_type!r}" if content_type else "got none"
    assert error["message"] == f"body: send it as JSON with the header Content-Type: application/json ({got})"
    assert error["param"] is None


@pytest.mark.parametrize("body", [b"[1]", b'"hi"', b"null"])
@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/vnd.api+json"])
def test_a_json_body_that_is_no_object_gets_pydantics_message_not_the_header_advice(serve_url, body, content_type):
    import httpx

    headers = {"Content-Type": content_type}
    raw = httpx.post(f"{serve_url}/chat/completions", content=body, headers=headers, timeout=60)
    assert raw.status_code == 400
    assert raw.json()["error"]["message"] == "body: Input should be a valid dictionary or object to extract fields from"


@pytest.mark.parametrize("options", [{"n": 2}, {"logprobs": True}, {"logprobs": True, "top_logprobs": 2}])
def test_options_the_server_does_not_honour_are_refused_not_ignored(serve_url, options):
    client = openai.OpenAI(base_url=serve_url, api_key="unused", max_retries=0, timeout=60)
    with pytest.raises(openai.BadRequestError, match="n=2|logprobs"):
        client.chat.completions.create(model="sp-test", messages=QUESTION, max_tokens=4, **options)


@pytest.mark.llamacpp
def test_ctrl_c_stops_the_server_with_a_line_and_no_resume_hint(default_model):
    pytest.importorskip("llama_cpp")
    import signal
    import subprocess

    command = [str(Path(sys.executable).parent / "selfprompt"), "serve", "--backend", "llamacpp", "--port", "0"]
    proc = subprocess.Popen(
        command, stderr=subprocess.PIPE, text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)
    )
    for line in proc.stderr:
        if "listening on" in line:
            break
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    assert proc.wait(timeout=60) == 0
    assert "selfprompt serve: stopped" in rest and "resume" not in rest and "Traceback" not in rest
