"""Conditions and `selfprompt ask` end to end, on the real default model and a real llama.cpp server."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from selfprompt.cli import app
from selfprompt.errors import ConfigError
from selfprompt.format import DEFAULT_FORMAT
from selfprompt.generate.backends import Sampling
from selfprompt.generate.conditions import CONDITIONS, ManualRole, answer_questions, clean_role, icl_prompt

runner = CliRunner()
ROLE_OPENER, ICL_ACCEPTANCE = icl_prompt().opener, icl_prompt().acceptance
SKY = "Why is the sky blue?"


def test_clean_role_keeps_first_paragraph_within_bounds():
    assert (
        clean_role(" an astronomer who explains light.\n\nThe sky is blue because")
        == "From now on, you are an astronomer who explains light."
    )
    assert (
        clean_role("From now on, you are a chemist.") == "From now on, you are a chemist."
    )  # prefill ignored by server
    assert clean_role("Sure! From now on, you are a chef.\nAnswer:") == "From now on, you are a chef."
    assert clean_role("\n\n") == "" and clean_role(".") == ""
    long = clean_role(" a physicist. " + "You explain things very well. " * 40)
    assert long.startswith(ROLE_OPENER) and long.endswith(".") and len(long) <= 400


def test_conditions_are_checked_before_any_generation():
    with pytest.raises(ConfigError, match="valid: plain, manual-role"):
        answer_questions(None, ["q"], "role-play", Sampling())
    with pytest.raises(ConfigError, match="needs the role prompt we give the model"):
        answer_questions(None, ["q"], "manual-role", Sampling())
    assert CONDITIONS == ("plain", "manual-role", "icl-self-prompt", "self-prompt", "self-prompt-no-role")


@pytest.mark.slow
def test_conditions_on_the_default_model(hf_backend):
    sampling = Sampling(max_tokens=4)
    icl = answer_questions(hf_backend, [SKY, "How do magnets work?"], "icl-self-prompt", sampling)
    for out in icl:
        # Step 1 wrote a role (or fell back, and says so); step 2 answered inside the immersion.
        assert out.role.startswith(ROLE_OPENER) and len(out.role) > len(ROLE_OPENER) + 3
        assert [m.role for m in out.messages] == ["user", "assistant", "user"]
        assert (out.messages[0].content, out.messages[1].content) == (out.role, ICL_ACCEPTANCE)
        assert out.answer == out.raw.strip() and out.format_held is None
        assert out.usage.completion_tokens > 4  # both steps counted
    manual = answer_questions(
        hf_backend, [SKY], "manual-role", sampling, manual_role=ManualRole("From now on, you are a physicist.", "Sure.")
    )[0]
    assert manual.role == "From now on, you are a physicist." and manual.messages[1].content == "Sure."
    no_role = answer_questions(hf_backend, [SKY], "self-prompt-no-role", sampling)[0]
    assert no_role.assistant_prefix == DEFAULT_FORMAT.role_prefix("")
    assert (no_role.role, no_role.format_held) == ("", True) and no_role.answer == no_role.raw
    tuned = answer_questions(hf_backend, [SKY], "self-prompt", sampling)[0]
    # The untuned model writes no role block: parse says so instead of inventing one.
    assert tuned.format_held is False and tuned.problem in ("no-role", "heuristic-role")
    assert [m.content for m in tuned.messages] == [SKY] and tuned.assistant_prefix == ""


def _ask(*args):
    result = runner.invoke(app, ["ask", *args])
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


@pytest.mark.slow
def test_ask_icl_self_prompt_streams_role_then_answer_on_hf():
    out = _ask("--condition", "icl-self-prompt", "--max-tokens", "8", SKY)
    role_at, answer_at = out.index("Role prompt (written by the model)"), out.index("Answer")
    assert role_at < out.index(ROLE_OPENER) < answer_at
    assert out[answer_at:].strip("─ \n").replace("Answer", "", 1).strip()  # some answer text was shown


@pytest.mark.slow
@pytest.mark.llamacpp
def test_ask_icl_self_prompt_on_llamacpp():
    pytest.importorskip("llama_cpp")
    out = _ask("--backend", "llamacpp", "--max-tokens", "4", SKY)
    assert out.index("Role prompt (written by the model)") < out.index(ROLE_OPENER) < out.index("Answer")


@pytest.mark.slow
@pytest.mark.llamacpp
def test_ask_json_through_openai_backend(llama_server):
    out = _ask(
        "--backend", "openai", "--base-url", llama_server, "--model", "default", "--max-tokens", "4", "--json", SKY
    )
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [r["question"] for r in records] == [SKY]
    for r in records:
        assert r["condition"] == "icl-self-prompt" and r["backend"] == "openai" and r["model"] == "default"
        assert r["role"].startswith(ROLE_OPENER) and len(r["role"]) > len(ROLE_OPENER) + 3 and r["answer"]
        assert r["messages"][0]["content"] == r["role"] and r["usage"]["completion_tokens"] > 0


def test_ask_rejects_bad_condition_before_loading_a_model():
    result = runner.invoke(app, ["ask", "--condition", "roleplay", "--backend", "nope", SKY])
    assert isinstance(result.exception, ConfigError) and "valid: plain" in str(result.exception)
