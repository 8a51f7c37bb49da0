"""Hostile review of commit 2da6d6c: the weight-first CPU linear, serve's 400 for a malformed body, and the server
command's placeholder check, each probed the way a demanding user would break it."""

from __future__ import annotations

import copy
import io
import pickle

import pytest
from test_serve import serve_url  # noqa: F401  (the real `selfprompt serve` subprocess, one per module)

from selfprompt.generate.servers import ServerConfig

# ---------------------------------------------------------------------------------------------
# 3. ServerConfig: a placeholder written wrong is refused, a user's literal JSON never is


@pytest.mark.parametrize(
    ("word", "name"),
    [
        ("{{model}}", "model"),
        ("{model}}", "model"),
        ("{{model}", "model"),
        ("{ model }", "model"),
        ("{model ", "model"),
        ("{port}{model", "model"),
        ("--x={{port}}", "port"),
        ("{lora_name}}", "lora_name"),
    ],
)
def test_a_placeholder_with_a_brace_doubled_missing_or_spaced_is_refused(word, name):
    # fill() would send the stray braces: "{{port}}" reaches the server as "{8000}", "{model}}" as "/path}"
    with pytest.raises(ValueError, match="malformed placeholder") as err:
        ServerConfig.model_validate({"command": ["srv", word, "--port", "{port}"]})
    assert f"in '{word}': write {{{name}}}" in str(err.value)


@pytest.mark.parametrize(
    "word",
    [
        "a{port}b",
        "{}",
        "}{",
        '{"level": 3}',
        '{"max_loras": 2}',
        '--hf-overrides={"rope_scaling": {"type": "linear"}}',
        '{"port": 1, "model": "x"}',
        '{ "host": "h" }',
        "{not_a_placeholder",
        "x}",
        "modelport",
    ],
)
def test_literal_json_and_other_braces_are_kept_as_written(word):
    config = ServerConfig.model_validate({"command": ["srv", word, "--port", "{port}"]})
    assert config.command[1] == word


# ---------------------------------------------------------------------------------------------
# 2. serve: every malformed body is an OpenAI-style 4xx naming the field, and the server keeps answering

JSON = {"content-type": "application/json"}
HI = '[{"role": "user", "content": "Hi"}]'


@pytest.mark.parametrize(
    ("content", "headers", "param", "says"),
    [
        (b"not json", JSON, None, "not valid JSON at character 0"),
        (b'{"messages": [', JSON, None, "not valid JSON at character 14"),
        (b"[1, 2]", JSON, None, "body: "),
        (b'"hello"', JSON, None, "body: "),
        (b"", JSON, None, "body: "),
        (b"", {}, None, "Content-Type: application/json (got none)"),
        (f'{{"messages": {HI}}}'.encode(), {}, None, "(got none)"),  # no content-type: not read as JSON
        (f'{{"messages": {HI}}}'.encode(), {"content-type": "text/plain"}, None, "(got 'text/plain')"),
        (f'{{"messages": {HI}, "max_tokens": 1e400}}'.encode(), JSON, "max_tokens", "finite"),
        (f'{{"messages": {HI}, "temperature": NaN}}'.encode(), JSON, "temperature", "temperature: "),
        (f'{{"messages": {HI}, "max_tokens": {"9" * 5000}}}'.encode(), JSON, None, "parsing the body"),
        (b'{"messages": "\xff"}', JSON, None, "parsing the body"),
        (f'{{"messages": {HI}, "stop": [1]}}'.encode(), JSON, "stop", "stop[0]: "),
        (
            b'{"messages": [{"role": "user", "content": "Hi", "\xc3\xa9\xe2\x9c\x93": 1}]}',
            JSON,
            "messages[0].\u00e9\u2713",
            "",
        ),
        (
            b'{"messages": [{"role": "user", "content": "Hi"}, {"role": "user", "content": 5}]}',
            JSON,
            "messages[1].content",
            "",
        ),
        (b'{"messages": ["hi"]}', JSON, "messages[0]", ""),
    ],
)
def test_any_malformed_body_is_an_openai_400_and_the_server_keeps_answering(serve_url, content, headers, param, says):  # noqa: F811
    import httpx

    raw = httpx.post(f"{serve_url}/chat/completions", content=content, headers=headers, timeout=60)
    assert raw.status_code == 400, raw.text
    error = raw.json()["error"]  # OpenAI's shape, never FastAPI's {"detail": ...}
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert says in error["message"]
    if param is not None:
        assert error["message"].startswith(f"{param}: ")
    assert httpx.get(f"{serve_url}/models", timeout=30).status_code == 200


def test_an_unknown_path_is_an_openai_404(serve_url):  # noqa: F811
    import httpx

    raw = httpx.post(f"{serve_url}/completion", json={}, timeout=30)
    assert raw.status_code == 404 and raw.json()["error"]["message"] == "Not Found"


@pytest.mark.parametrize(
    ("field", "value"),
    [("temperature", float("inf")), ("max_tokens", 10**30), ("seed", 10**30), ("seed", -1), ("top_p", 1e-300)],
)
def test_extreme_numbers_are_answered_or_refused_and_never_break_the_server(serve_url, field, value):  # noqa: F811
    import json

    import httpx
    import openai

    body = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2, field: value}
    raw = httpx.post(f"{serve_url}/chat/completions", content=json.dumps(body), headers=JSON, timeout=120)
    assert raw.status_code in (200, 400), raw.text
    if raw.status_code == 400:
        assert raw.json()["error"]["param"] == field and field in raw.json()["error"]["message"]
    client = openai.OpenAI(base_url=serve_url, api_key="unused", max_retries=0)
    reply = client.chat.completions.create(model="sp-test", messages=body["messages"], max_tokens=2)
    assert reply.choices[0].finish_reason in ("length", "stop")


@pytest.mark.parametrize(
    ("limits", "content", "param"),
    [
        ({"max_completion_tokens": 10**6}, "Hi", "max_completion_tokens"),
        ({"max_tokens": 2, "max_completion_tokens": 10**6}, "Hi", "max_completion_tokens"),  # the one honoured
        ({"max_tokens": 2}, "word " * 9000, "messages"),  # past the model's 8192-token context alone
        ({"max_tokens": 10**6}, "word " * 9000, "messages"),
        ({}, "word " * 9000, "messages"),
    ],
)
def test_a_request_that_does_not_fit_blames_the_field_at_fault(serve_url, limits, content, param):  # noqa: F811
    import httpx

    body = {"messages": [{"role": "user", "content": content}], **limits}
    raw = httpx.post(f"{serve_url}/chat/completions", json=body, timeout=120)
    assert raw.status_code == 400, raw.text
    assert raw.json()["error"]["param"] == param
    assert "exceed" in raw.json()["error"]["message"]


def test_the_openai_client_gets_a_bad_request_naming_a_nested_field(serve_url):  # noqa: F811
    import openai

    client = openai.OpenAI(base_url=serve_url, api_key="unused", max_retries=0)
    bad = [{"role": "user", "content": "Hi"}, {"role": "user", "content": 5}]
    with pytest.raises(openai.BadRequestError, match=r"messages\[1\]\.content") as err:
        client.chat.completions.create(model="sp-test", messages=bad, max_tokens=2)
    assert err.value.body["param"] == "messages[1].content"
    with pytest.raises(openai.BadRequestError, match="stop"):
        client.chat.completions.create(model="sp-test", messages=bad[:1], max_tokens=2, stop=[1])


# ---------------------------------------------------------------------------------------------
# 1. weight_first_linear: odd inputs, grad modes, autocast, copies, pickles, peft and dtype moves of a patched model


def patched_net(seed: int = 0):
    import torch

    from selfprompt.generate.backends.cpu_linear import use_weight_first_linears

    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(24, 40), torch.nn.ReLU(), torch.nn.Linear(40, 7, bias=False))
    assert use_weight_first_linears(net) == 2
    return net


def plain(net, x):
    """The same network through F.linear (nn.Linear's own product)."""
    import torch.nn.functional as F

    for module in net:
        x = F.linear(x, module.weight, module.bias) if hasattr(module, "weight") else module(x)
    return x


def odd_inputs():
    import torch

    torch.manual_seed(1)
    return {
        "transposed": torch.randn(24, 3).t(),
        "expanded": torch.randn(1, 24).expand(4, 24),
        "strided rows": torch.randn(4, 24)[::2],
        "4-D": torch.randn(1, 1, 2, 24),
        "2 batches of 1": torch.randn(2, 1, 24),
        "1-D": torch.randn(24),
        "0 rows": torch.randn(0, 24),
        "0 batches": torch.randn(0, 3, 24),
        "5 rows": torch.randn(5, 24),
    }


@pytest.mark.parametrize("name", list(odd_inputs()))
@pytest.mark.parametrize("mode", ["no_grad", "inference_mode"])
def test_odd_shapes_and_strides_give_nn_linears_result(name, mode):
    import torch

    net = patched_net()
    x = odd_inputs()[name]
    with getattr(torch, mode)():
        out = net(x)
        expected = plain(net, x)
    assert out.shape == expected.shape and out.is_contiguous()
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_a_leaf_that_requires_grad_trains_through_it_and_no_grad_detaches():
    import torch

    net = patched_net()
    x = torch.randn(3, 24, requires_grad=True)
    with torch.no_grad():
        assert not net(x).requires_grad
    net(x).sum().backward()
    grad = x.grad.clone()
    x.grad = None
    plain(net, x).sum().backward()
    torch.testing.assert_close(grad, x.grad)


def test_autocast_gives_the_dtype_nn_linear_gives():
    import torch

    net = patched_net()
    x = torch.randn(2, 24)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        out, expected = net(x), plain(net, x)
    assert out.dtype == expected.dtype == torch.bfloat16
    torch.testing.assert_close(out, expected, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("how", ["deepcopy", "pickle", "torch.save"])
def test_a_patched_model_copies_and_pickles_and_stays_patched(how):
    # Fault found: the forward was a bound method, which pickle looks up again by name ("weight_first_linear") on
    # the module, so torch.save(model) and pickle.loads raised AttributeError.
    import torch

    net = patched_net()
    if how == "deepcopy":
        other = copy.deepcopy(net)
    elif how == "pickle":
        other = pickle.loads(pickle.dumps(net))
    else:
        buffer = io.BytesIO()
        torch.save(net, buffer)
        buffer.seek(0)
        other = torch.load(buffer, weights_only=False)
    x = torch.randn(2, 24)
    with torch.inference_mode():
        torch.testing.assert_close(other(x), net(x), rtol=0, atol=0)
    # the copy's forward reads the copy's weights: changing them changes only the copy
    with torch.no_grad():
        other[0].weight.zero_()
    with torch.inference_mode():
        assert not torch.equal(other(x), net(x))
    assert set(other.state_dict()) == set(net.state_dict()) == {"0.weight", "0.bias", "2.weight"}


def test_lora_on_top_of_a_patched_model_and_merged_back():
    import torch
    from peft import LoraConfig, get_peft_model

    net = patched_net()
    peft_model = get_peft_model(net, LoraConfig(r=2, target_modules=["0", "2"], init_lora_weights=False))
    x = torch.randn(3, 24)
    with torch.inference_mode():
        with_lora = peft_model(x)
        base_only = plain(peft_model.base_model.model, x)
    assert not torch.allclose(with_lora, base_only)  # the adapter is applied (its B is not zero)
    merged = peft_model.merge_and_unload()
    assert [type(m).__name__ for m in merged] == ["Linear", "ReLU", "Linear"]
    with torch.inference_mode():
        torch.testing.assert_close(merged(x), with_lora, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(merged(x), plain(merged, x), rtol=1e-5, atol=1e-5)


def test_a_patched_model_moved_to_bf16_takes_nn_linears_product_exactly():
    import torch

    net = patched_net().to(torch.bfloat16)
    x = torch.randn(2, 24, dtype=torch.bfloat16)
    with torch.inference_mode():
        assert torch.equal(net(x), plain(net, x))


@pytest.mark.parametrize("rows", [2, 3, 4])
def test_the_default_models_logits_agree_with_nn_linear_at_2_to_4_rows(hf_backend, rows):
    import torch

    model = hf_backend.model
    head = model.get_output_embeddings()
    assert head.weight is model.get_input_embeddings().weight  # tied: the patched head reads the embedding
    ids = hf_backend.tokenizer(["The sky is blue because"] * rows, return_tensors="pt")["input_ids"]
    ids[:, -1] = torch.arange(rows) + 100  # rows that differ
    with torch.inference_mode():
        past = model(ids[:, :-1], use_cache=True).cache
        fast = model(ids[:, -1:], cache=copy.deepcopy(past), use_cache=True).logits
        patched = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and "forward" in vars(m)]
        assert len(patched) > 200
        try:
            for module in patched:
                del module.forward  # nn.Linear's own forward
            slow = model(ids[:, -1:], cache=past, use_cache=True).logits
        finally:
            from selfprompt.generate.backends.cpu_linear import use_weight_first_linears

            use_weight_first_linears(model)
    assert fast.shape == slow.shape == (rows, 1, head.weight.shape[0])
    torch.testing.assert_close(fast, slow, rtol=0, atol=1e-3)
    assert torch.equal(fast.argmax(-1), slow.argmax(-1))


def test_torch_compile_of_a_patched_model_traces_f_linear_at_every_row_count():
    # Fault found: from the second row count on, dynamo traced a symbolic row count and `rows in range(...)` raised
    # "SymNodeVariable() is not a constant". A compiled model now takes F.linear throughout, so what a compiler sees
    # is exactly an unpatched model's graph. The graphs are read through a recording backend (dynamo's tracing, then
    # eager execution), not inductor: PyTorch 2.13's inductor reuses C++ kernels from its on-disk cache
    # (/tmp/torchinductor_$USER) that were compiled under another ATEN_CPU_CAPABILITY, and then computes wrong
    # values or corrupts the heap (reproduced with a plain nn.Sequential: compile once with avx2 forced, once
    # natively): the abort a CI run met in this test, whose machine's /tmp likely held kernels of both kinds.
    import torch
    import torch.nn.functional as F

    graphs = []

    def record(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    net = patched_net()
    compiled = torch.compile(net, backend=record)
    with torch.no_grad():
        for rows in (3, 7, 2, 1):
            x = torch.randn(rows, 24)
            torch.testing.assert_close(compiled(x), plain(net, x), rtol=1e-6, atol=1e-6)
    assert graphs, "dynamo traced nothing"
    called = [node.target for gm in graphs for node in gm.graph.nodes if node.op == "call_function"]
    assert called.count(F.linear) == 2 * len(graphs)  # both layers, in every graph dynamo made
    assert not {torch.matmul, torch.mm, torch.Tensor.t, torch.transpose} & set(called), called
