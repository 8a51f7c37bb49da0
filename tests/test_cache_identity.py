"""Every input that changes a generation is in its cache key: models by content, prompts by their files.

Two tiny random Llama models (built here from a config, with the default model's tokenizer and chat
template) stand in for two trained models saved under the same folder name in different runs. They
differ in one weight. Prompt files are edited in a copy named by $SELFPROMPT_PROMPT_DIR.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from selfprompt import hashindex
from selfprompt.evaluate.runner import EvalConfig, cache_key, run_eval
from selfprompt.evaluate.tasks import get_tasks
from selfprompt.generate.backends import get_backend
from selfprompt.models import load_tokenizer, resolve_model
from selfprompt.prompts import PROMPT_DIR_ENV, prompt_path

from conftest import CountingBackend, CountingHash


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


@pytest.fixture(scope="module")
def two_models(default_model, tmp_path_factory) -> tuple[Path, Path]:
    """runs/a/model and runs/b/model: the same tiny architecture, one weight apart."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = load_tokenizer(default_model)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    root = tmp_path_factory.mktemp("runs")
    folders = root / "a" / "model", root / "b" / "model"
    model.save_pretrained(folders[0])
    tokenizer.save_pretrained(folders[0])
    with torch.no_grad():
        model.model.embed_tokens.weight[0, 0] += 1.0
    model.save_pretrained(folders[1])
    tokenizer.save_pretrained(folders[1])
    return folders


def eval_config(model: Path, out: Path, data_dir: Path, **kw) -> EvalConfig:
    base = dict(
        model=str(model),
        backend="hf",
        tasks=["gsm8k"],
        conditions=["plain"],
        data_dir=str(data_dir),
        out=str(out),
        limit=2,
        seed=3,
        max_tokens=4,
        trigger_max_tokens=2,
        bootstrap_resamples=100,
    )
    return EvalConfig(**{**base, **kw})


def test_same_named_model_folders_get_ids_by_content_remembered_at_no_cost(two_models, tmp_path, monkeypatch):
    monkeypatch.setenv("SELFPROMPT_CACHE", str(tmp_path / "cache"))
    a, b = two_models
    ra, rb = resolve_model(str(a)), resolve_model(str(b))
    assert ra.name == rb.name == "model"
    assert ra.model_id != rb.model_id and ra.model_id.startswith("model@") and rb.model_id.startswith("model@")

    counting = CountingHash(hashindex.sha256_file)
    monkeypatch.setattr(hashindex, "sha256_file", counting)
    assert resolve_model(str(a)).model_id == ra.model_id
    assert counting.calls == [], "a second look at an unchanged model reads no file"

    copy = tmp_path / "c" / "model"  # the same content in another folder is the same model
    shutil.copytree(a, copy)
    assert resolve_model(str(copy)).model_id == ra.model_id
    assert {p.name for p in counting.calls} >= {"model.safetensors", "config.json", "tokenizer.json"}

    counting.calls.clear()
    (copy / "chat_template.jinja").write_text("{{ messages[0]['content'] }}")  # what the model is asked changes
    assert resolve_model(str(copy)).model_id != ra.model_id
    assert [p.name for p in counting.calls] == ["chat_template.jinja"]  # only the new file is read


def test_two_models_from_same_named_folders_evaluated_into_one_out_get_two_sets_of_generations(
    two_models, data_dir, tmp_path
):
    a, b = two_models
    out = tmp_path / "eval"
    runs = {}
    for model in (a, b, a):
        backend = CountingBackend(get_backend("hf", model=str(model)), close_inner=True)
        try:
            results = run_eval(eval_config(model, out, data_dir), backend=backend)
        finally:
            backend.close()
        runs.setdefault(model, []).append((backend.requests, results))
    (a_requests, a_results), (again_requests, again_results) = runs[a]
    [(b_requests, b_results)] = runs[b]
    assert a_requests == b_requests == 2 * 2  # two items, answer and trigger: b reused nothing of a
    assert again_requests == 0  # a's generations are still there, under a's id
    assert a_results["model"] != b_results["model"] and again_results == a_results

    rows = lines(out / "generations" / "gsm8k__plain.jsonl")
    assert len(rows) == 4 and len({r["key"] for r in rows}) == 4
    assert {r["model"] for r in rows} == {a_results["model"], b_results["model"]}
    items = lines(out / "items" / "gsm8k__plain.jsonl")  # the folder holds the last run: a's
    assert [i["raw"] for i in items] == [r["raw"] for r in rows if r["model"] == a_results["model"]]


def test_editing_the_icl_examples_file_regenerates_exactly_the_icl_generations(
    two_models, data_dir, tmp_path, monkeypatch
):
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    shutil.copy(prompt_path("icl-self-prompt"), prompts / "icl-self-prompt.yaml")
    monkeypatch.setenv(PROMPT_DIR_ENV, str(prompts))
    model = two_models[0]
    out = tmp_path / "eval"
    config = eval_config(model, out, data_dir, conditions=["plain", "icl-self-prompt"])
    backend = CountingBackend(get_backend("hf", model=str(model)), close_inner=True)
    try:
        run_eval(config, backend=backend)
        assert backend.requests == 2 * 2 + 2 * 3  # plain: answer, trigger; icl: role, answer, trigger
        backend.requests = 0
        run_eval(config, backend=backend)
        assert backend.requests == 0

        data = yaml.safe_load((prompts / "icl-self-prompt.yaml").read_text())
        data["examples"][0]["role"] = "From now on, you are a patient abacus teacher who counts every bead twice."
        (prompts / "icl-self-prompt.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        run_eval(config, backend=backend)
        assert backend.requests == 2 * 3, "only the icl-self-prompt generations are made again"
    finally:
        backend.close()
    assert len(lines(out / "generations" / "gsm8k__plain.jsonl")) == 2  # plain reused
    assert len(lines(out / "generations" / "gsm8k__icl-self-prompt.jsonl")) == 4  # old and new prompt


def test_trigger_text_and_manual_role_text_are_in_the_key(monkeypatch, tmp_path, data_dir):
    from selfprompt.evaluate import roles
    from selfprompt.evaluate.tasks import load_items

    backend = get_backend("openai", model="m", base_url="http://127.0.0.1:9/v1")  # nothing is sent
    spec = get_tasks(["gsm8k"])[0]
    item = load_items(spec, data_dir)[0]
    config = EvalConfig(tasks=["gsm8k"], data_dir=str(data_dir), out=str(tmp_path))
    keys = {c: cache_key(backend, spec, item, c, config) for c in ("plain", "manual-role")}
    other_trigger = spec.model_copy(update={"trigger": "So the final number is"})
    assert all(cache_key(backend, other_trigger, item, c, config) != keys[c] for c in keys)

    edited = tmp_path / "roles.yaml"
    data = yaml.safe_load(roles.ROLES_FILE.read_text())
    data["families"][spec.role_family]["acceptance"] = "Sure. Ask away."
    edited.write_text(yaml.safe_dump(data))
    monkeypatch.setattr(roles, "ROLES_FILE", edited)
    assert roles.manual_role(spec.role_family).acceptance == "Sure. Ask away."
    assert cache_key(backend, spec, item, "manual-role", config) != keys["manual-role"]
    assert cache_key(backend, spec, item, "plain", config) == keys["plain"]
    backend.close()


def test_judge_prompts_are_data_and_their_hash_is_the_cache_namespace(tmp_path, monkeypatch):
    from selfprompt.evaluate import judge
    from selfprompt.generate.backends.base import Sampling

    before = {f: judge.verdict_style(f) for f in ("tags", "json")}
    assert before["tags"].system == judge.SYSTEM_PROMPT and before["tags"].user == judge.USER_TEMPLATE
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    shutil.copy(prompt_path("judge-pairwise"), prompts / "judge-pairwise.yaml")
    monkeypatch.setenv(PROMPT_DIR_ENV, str(prompts))
    assert {f: judge.verdict_style(f).namespace for f in before} == {f: s.namespace for f, s in before.items()}

    text = (prompts / "judge-pairwise.yaml").read_text().replace("careful, impartial reviewer", "strict reviewer")
    (prompts / "judge-pairwise.yaml").write_text(text)
    after = {f: judge.verdict_style(f) for f in before}
    assert all(after[f].namespace != before[f].namespace and after[f].template == before[f].template for f in before)
    request = judge.judge_request("q", "x", "y", Sampling(), after["tags"])
    assert request.messages[0].content.startswith("You are a strict reviewer")


def test_answers_resumed_from_a_partial_file_are_never_another_models(two_models, tmp_path):
    from selfprompt.evaluate.judge_cli import PARTIAL_SUFFIX, generate_answers
    from selfprompt.generate.backends.base import Sampling
    from selfprompt.records import Example

    questions = [Example(id="1", question="Name a colour."), Example(id="2", question="Name a fruit.")]
    out = tmp_path / "answers.jsonl"
    partial = out.with_name(out.name + PARTIAL_SUFFIX)
    sampling = Sampling(max_tokens=3)
    ids = {}
    for model in two_models:
        backend = get_backend("hf", model=str(model))
        try:
            ids[model] = backend.model_id
            # A run of the other model was killed before its last write: its answers are in the partial file.
            if out.exists():
                shutil.copy(out, partial)
            assert generate_answers(backend, questions, "plain", sampling, out) == 2
            assert {r["model"] for r in lines(out)} == {backend.model_id}
            shutil.copy(out, partial)  # the same model resumed: nothing to redo
            assert generate_answers(backend, questions, "plain", sampling, out) == 0
        finally:
            backend.close()
    assert len(set(ids.values())) == 2
