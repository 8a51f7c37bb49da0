"""Conditions are registered objects: looked up by name, the only place their names are written, and the
source of every request, cache key and file a condition uses.

The streamed and batched paths of `selfprompt ask` are run through the real command on the real default
model, with a wrapper that records the requests reaching it: they must send the same requests.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

import selfprompt.generate.cli as ask_cli
from selfprompt.cli import app
from selfprompt.errors import ConfigError
from selfprompt.evaluate.judge_cli import answer_key
from selfprompt.evaluate.roles import ROLES_FILE, condition_files
from selfprompt.evaluate.runner import EvalConfig, cache_key
from selfprompt.evaluate.tasks import Item, get_tasks
from selfprompt.generate.backends.base import Backend, Sampling
from selfprompt.generate.conditions import (
    CONDITIONS,
    SELF_PROMPT_ROLE_ALLOWANCE,
    ManualRole,
    find_condition,
    get_condition,
    icl_prompt,
)
from selfprompt.prompts import prompt_path
from selfprompt.records import Example

SRC = Path(__file__).resolve().parents[1] / "src" / "selfprompt"
REGISTRY = SRC / "generate" / "conditions.py"
SKY = "Why is the sky blue?"
SHORT = "Say hello."  # a short answer: self-prompt may write 4 + 160 tokens


def test_every_condition_is_one_registered_object_and_a_miss_lists_the_valid_names():
    assert CONDITIONS == ("plain", "manual-role", "icl-self-prompt", "self-prompt", "self-prompt-no-role")
    for name in CONDITIONS:
        assert get_condition(name).name == name and get_condition(name) is find_condition(name)
    with pytest.raises(ConfigError) as miss:
        get_condition("self-promt")
    assert "unknown condition 'self-promt'" in str(miss.value)
    assert all(name in str(miss.value) for name in CONDITIONS)
    assert find_condition("their-condition") is None  # names from another tool's predictions are not errors
    with pytest.raises(ConfigError, match="needs the role prompt we give the model"):
        get_condition("manual-role").check(None)


def test_what_each_condition_declares():
    needs_role = {n for n in CONDITIONS if get_condition(n).needs_manual_role}
    assert needs_role == {"manual-role"}
    assert get_condition("manual-role").role_title == "Role prompt (given)"
    assert get_condition("self-prompt").role_title == "Role prompt (written by the model)"
    assert {n: get_condition(n).role_allowance for n in CONDITIONS if get_condition(n).role_allowance} == {
        "self-prompt": SELF_PROMPT_ROLE_ALLOWANCE
    }
    sampling = Sampling(max_tokens=16)
    two_steps = {n for n in CONDITIONS if get_condition(n).role_request(SKY, sampling) is not None}
    assert two_steps == {"icl-self-prompt"}
    # The files a condition reads rerun the experiment stages that use it when edited.
    assert condition_files(["plain", "self-prompt"]) == []
    assert condition_files(["icl-self-prompt", "manual-role"]) == [prompt_path("icl-self-prompt"), ROLES_FILE]


def _condition_literals(path: Path) -> list[tuple[int, str]]:
    """(line, name) of every string literal in `path` that is exactly a condition name and is used as one.

    "self-prompt" also names a training mode (train's modes "self-prompt" and "baseline"); a literal in a
    statement about modes is that, not a condition."""
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    statement_of: dict[ast.AST, ast.stmt] = {}  # each node -> the innermost statement holding it
    for statement in ast.walk(tree):
        if isinstance(statement, ast.stmt):
            for child in ast.iter_child_nodes(statement):
                if not isinstance(child, ast.stmt):
                    for node in ast.walk(child):
                        statement_of[node] = statement
    found = []
    for node, statement in statement_of.items():
        if isinstance(node, ast.Constant) and node.value in CONDITIONS:
            text = ast.get_source_segment(source, statement) or "" if node.value == "self-prompt" else ""
            if not ("mode" in text or '"baseline"' in text):
                found.append((node.lineno, node.value))
    return sorted(set(found))


def test_condition_names_are_written_only_where_the_conditions_are_registered():
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if path != REGISTRY and "train" not in path.relative_to(SRC).parts:
            offenders += [f"{path.relative_to(SRC)}:{line}: {name!r}" for line, name in _condition_literals(path)]
    assert offenders == []
    assert {name for _, name in _condition_literals(REGISTRY)} == set(CONDITIONS)  # the check can fail


# Cache keys of generations computed at commit 4d9ccaf (before conditions were objects), hard-coded as the
# regression pin: the key material a condition adds must stay byte-identical, so existing caches (the
# demo's results) are reused. (eval key, `judge answers` key) per condition.
PINNED_KEYS = {
    "plain": (
        "bb7d9b8e9cad4065c5f8bbaefc01a076ed7b208ef9a86b2e238aa54a46e93313",
        "707a13c1c41f46b78b3edf5b65b38b67adda7d6eddda0d62a21776dc968f722e",
    ),
    "manual-role": (
        "512b7a3dbb72e2c20798b904c494574f465a3b0bb1109ce46d8cb483195117d8",
        "337b27250dd95fbb24397c78c2ced1f1265528747714d32d198dc81ac6679355",
    ),
    "icl-self-prompt": (
        "4a97c36686a5e619eddcaaff9104d9106753b8c99ce90ae9631ba0b77c19340a",
        "bd67b09394709edee619332d5b8d73cb364f30307dd2a5643ad62ba7b04ecf05",
    ),
    "self-prompt": (
        "4718879e6941ee4ea04a6e67de9666a7eb8b996cfaced62e5da7603193aad4f0",
        "539f71205904fa65e475803137d9829e6165392e56ed41f16e75fa500a864590",
    ),
    "self-prompt-no-role": (
        "640de643057940a9336b1358216ca66b7e25109f32fdd72318e22ab138193b3f",
        "b4ec998c7af01c31861acc9ba381e5dfc65005ac274f9366dff6f030ef70a6cd",
    ),
}


@pytest.mark.parametrize("condition", CONDITIONS)
def test_cache_keys_are_those_of_before_the_refactor(condition, monkeypatch):
    monkeypatch.delenv("SELFPROMPT_PROMPT_DIR", raising=False)  # the packaged prompt files
    backend = SimpleNamespace(name="hf", model_id="model@0123456789abcdef")  # all a key reads of a backend
    spec = get_tasks(["gsm8k"])[0]
    item = Item(task="gsm8k", id="7", question="What is 2 + 3?", answer="5")
    config = EvalConfig(tasks=["gsm8k"], data_dir="/nonexistent", out="/nonexistent", max_tokens=16)
    question = Example(id="1", question="Name a prime number.", source="x")
    sampling = Sampling(max_tokens=16, temperature=0.0, seed=0)
    keys = (cache_key(backend, spec, item, condition, config), answer_key(backend, question, condition, sampling))
    assert keys == PINNED_KEYS[condition]


def test_an_edited_icl_prompt_changes_the_keys_of_icl_only(tmp_path, monkeypatch):
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    text = prompt_path("icl-self-prompt").read_text(encoding="utf-8")
    (prompts / "icl-self-prompt.yaml").write_text(text + "\n# edited\n", encoding="utf-8")
    before = {c: get_condition(c).cache_prompts(Sampling(max_tokens=16), ManualRole("r", "a", "1")) for c in CONDITIONS}
    monkeypatch.setenv("SELFPROMPT_PROMPT_DIR", str(prompts))
    after = {c: get_condition(c).cache_prompts(Sampling(max_tokens=16), ManualRole("r", "a", "1")) for c in CONDITIONS}
    assert [c for c in CONDITIONS if before[c] != after[c]] == ["icl-self-prompt"]
    assert after["icl-self-prompt"]["prompt"] == icl_prompt().id != before["icl-self-prompt"]["prompt"]


class Recording(Backend):
    """The real backend, recording every request that reaches it, by generate or by stream."""

    def __init__(self, inner: Backend):
        super().__init__()
        self.inner, self.name, self.requests = inner, inner.name, []
        self.decisions = inner.decisions

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    def generate(self, requests):
        self.requests += list(requests)
        return self.inner.generate(requests)

    def stream(self, request):
        self.requests.append(request)
        return self.inner.stream(request)

    def close(self) -> None:  # the shared fixture's backend stays open
        pass


@pytest.mark.slow
@pytest.mark.parametrize("condition", CONDITIONS)
def test_streamed_and_batched_ask_send_identical_requests(condition, hf_backend, monkeypatch):
    recorder = Recording(hf_backend)
    monkeypatch.setattr(ask_cli, "build_backend", lambda *a, **kw: recorder)
    runner = CliRunner()
    args = ["ask", "--condition", condition, "--max-tokens", "4", "--role-prompt", "From now on, you are a physicist."]
    streamed = runner.invoke(app, [*args, SHORT])  # one question without --json: streamed
    assert streamed.exit_code == 0, (streamed.output, streamed.exception)
    sent_streamed, recorder.requests = recorder.requests, []
    batched = runner.invoke(app, [*args, "--json", SHORT])  # --json: the batched path
    assert batched.exit_code == 0, (batched.output, batched.exception)
    assert [json.loads(line)["condition"] for line in batched.output.splitlines() if line.startswith("{")] == [
        condition
    ]
    assert recorder.requests == sent_streamed
    steps = 2 if condition == "icl-self-prompt" else 1
    assert len(sent_streamed) == steps
    answer_tokens = sent_streamed[-1].sampling.max_tokens
    assert answer_tokens == 4 + (SELF_PROMPT_ROLE_ALLOWANCE if condition == "self-prompt" else 0)
