"""In-process generation that wastes nothing: batches of similar lengths, a batch size chosen from memory and
the model, and a trigger pass that reuses the first pass's keys and values (hf backend, real default model)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from selfprompt.evaluate.config import EvalConfig
from selfprompt.evaluate.generation import cache_key, generate_batch
from selfprompt.evaluate.runner import load_items, run_eval, select_items
from selfprompt.evaluate.tasks import get_tasks
from selfprompt.generate.backends import ChatRequest, Sampling
from selfprompt.hardware import PLAN_TOKENS_PER_ROW, generation_batch_size, kv_bytes_per_token
from selfprompt.records import Message


def req(question: str, max_tokens: int = 3) -> ChatRequest:
    return ChatRequest(messages=[Message(role="user", content=question)], sampling=Sampling(max_tokens=max_tokens))


class SpyGenerate:
    """Wraps model.generate: records each call's batch (rows, columns) and how many columns came from a cache."""

    def __init__(self, model):
        self.model, self.inner, self.calls = model, model.generate, []

    def __call__(self, **kwargs):
        cache = kwargs.get("cache")
        self.calls.append((tuple(kwargs["input_ids"].shape), cache.get_seq_length() if cache is not None else 0))
        return self.inner(**kwargs)


@pytest.fixture
def spy(hf_backend, monkeypatch):
    spy = SpyGenerate(hf_backend.model)
    monkeypatch.setattr(hf_backend.model, "generate", spy)
    return spy


def fake_model(layers=30, heads=9, kv_heads=3, hidden=576, vocab=49152):
    config = SimpleNamespace(
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        hidden_size=hidden,
        vocab_size=vocab,
    )
    config.get_text_config = lambda: config
    import torch

    return SimpleNamespace(config=config, dtype=torch.float32)


def test_batch_size_rule_from_memory_and_kv_cache_size():
    model = fake_model()
    per_token = kv_bytes_per_token(model.config, 4)
    assert per_token == 2 * 30 * 3 * 64 * 4  # keys and values, layers, KV heads (GQA), head dim, fp32
    per_row = per_token * PLAN_TOKENS_PER_ROW + 49152 * 4
    d = generation_batch_size(model, "cpu", None, memory_bytes=10 * per_row + 1, source="test budget")
    assert (d.requested, d.resolved) == ("auto", 10) and "test budget" in d.reason and str(per_token) in d.reason
    assert generation_batch_size(model, "cpu", None, memory_bytes=1, source="x").resolved == 1
    assert generation_batch_size(model, "cpu", None, memory_bytes=10**15, source="x").resolved == 64  # CPU cap
    assert generation_batch_size(model, "cuda", None, memory_bytes=10**15, source="x").resolved == 256
    explicit = generation_batch_size(model, "cpu", 5)
    assert (explicit.resolved, explicit.reason) == (5, "set explicitly")
    bigger = generation_batch_size(fake_model(kv_heads=9), "cpu", None, memory_bytes=10 * per_row, source="x")
    assert bigger.resolved < 10  # more KV per token, fewer rows in the same memory


def test_hf_backend_records_its_batch_size_decision(hf_backend):
    decision = hf_backend.decisions["batch_size"]
    assert decision["resolved"] == hf_backend.batch_size >= 1
    assert decision["requested"] == "auto" and "MemAvailable" in decision["reason"]


@pytest.mark.slow
def test_requests_are_batched_by_length_and_answered_in_order(hf_backend, spy, monkeypatch):
    questions = ["Hi.", "Explain in detail how a car engine works, step by step, please.", "Why?", "Name a color."]
    singles = [hf_backend.generate([req(q)])[0].text for q in questions]
    monkeypatch.setattr(hf_backend, "batch_size", 2)
    hf_backend._held = []  # the last single's cache would put its repeat in a batch of its own
    spy.calls.clear()
    batched = hf_backend.generate([req(q) for q in questions])
    assert [b.text for b in batched] == singles  # order restored, outputs as one at a time
    lengths = [hf_backend.tokenizer(q)["input_ids"] for q in questions]
    order = sorted(range(4), key=lambda i: len(lengths[i]))
    widths = [shape[1] for shape, _ in spy.calls]
    assert len(widths) == 2 and widths[0] < widths[1]  # the two short ones together, then the two long ones
    assert batched[order[0]].usage.prompt_tokens <= widths[0] and batched[order[3]].usage.prompt_tokens == widths[1]


@pytest.mark.slow
def test_trigger_pass_reuses_the_first_pass_and_changes_no_output_nor_key(hf_backend, spy, data_dir, monkeypatch):
    spec = get_tasks(["gsm8k"], [])[0]
    items = select_items(load_items(spec, str(data_dir)), 2, None)
    config = EvalConfig(tasks=["gsm8k"], conditions=["plain"], max_tokens=12, trigger_max_tokens=6, seed=None)
    keys = [cache_key(hf_backend, spec, i, "plain", config) for i in items]

    def run(reuse: bool) -> list[dict]:
        monkeypatch.setattr(hf_backend, "reuse_prefix", reuse)
        hf_backend._held = []
        spy.calls.clear()
        return [g.model_dump() for g in generate_batch(hf_backend, spec, items, "plain", keys, config)]

    encoded_again = run(False)
    assert [cached for _, cached in spy.calls] == [0, 0]
    reused = run(True)
    (first_shape, _), (trigger_shape, cached) = spy.calls
    assert cached > first_shape[1] // 2  # the trigger pass encodes only what follows the first pass
    assert trigger_shape[1] - cached < trigger_shape[1] // 2
    assert reused == encoded_again  # answers, trigger outputs, usage and keys: the same either way
    assert keys == [cache_key(hf_backend, spec, i, "plain", config) for i in items]


@pytest.mark.slow
def test_eval_chunks_by_the_backends_batch_size_and_records_it(hf_backend, data_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(hf_backend, "batch_size", 3)
    calls = []
    inner = hf_backend.generate
    monkeypatch.setattr(hf_backend, "generate", lambda requests: calls.append(len(requests)) or inner(requests))
    config = EvalConfig(
        tasks=["gsm8k"],
        conditions=["plain"],
        data_dir=str(data_dir),
        out=str(tmp_path),
        limit=3,
        seed=None,
        max_tokens=2,
        trigger_max_tokens=2,
        bootstrap_resamples=100,
    )
    assert config.batch_size is None
    run_eval(config, backend=hf_backend)
    assert calls == [3, 3]  # one answering call and one trigger call for all three items
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["decisions"]["batch_size"]["resolved"] == hf_backend.decisions["batch_size"]["resolved"]
