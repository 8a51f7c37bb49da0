"""Reply checks of the annotate stage: parsing, refusals, leakage, person, length, repetition."""

from __future__ import annotations

import json

import pytest

from selfprompt.annotate.template import load_template
from selfprompt.annotate.validate import check_reply, final_answer, parse_reply
from selfprompt.errors import ConfigError, DataError

TEMPLATE = load_template()
GOOD = (
    "From now on, you are a marine biologist who has spent fifteen years studying coral reefs. You know "
    "their ecology, threats and restoration methods, and you explain them with care and clear examples."
)


def check(text: str, question: str = "How do coral reefs form?", answer: str = "Slowly, from coral polyps.", **kw):
    return check_reply(text, question=question, answer=answer, template=TEMPLATE, **kw)


def test_plain_json_fenced_and_truncated_json_replies_parse_to_the_same_role():
    for reply in (
        GOOD,
        json.dumps({"role_prompt": GOOD}),
        f"```json\n{json.dumps({'role_prompt': GOOD})}\n```",
        f'Sure! Here is the expert role-play prompt:\n\n"{GOOD}"',
        f"Role prompt: {GOOD}",
    ):
        verdict = check(reply)
        assert verdict.status == "ok", (reply, verdict.reason)
        assert verdict.role_prompt == GOOD
    cut = json.dumps({"role_prompt": GOOD})[:-30]  # stopped at max_tokens inside the string
    parsed = parse_reply(cut, truncated=True)
    assert parsed.structured and GOOD.startswith(parsed.text) and parsed.text.endswith(".")


def test_weak_teacher_output_is_repaired_or_rejected():
    looping = GOOD + " You can explain it to anyone. You can explain it to anyone. You can explain it to anyone."
    verdict = check(looping)
    assert verdict.status == "ok" and verdict.role_prompt.count("explain it to anyone") == 1
    continued = GOOD + "\nQuestion: What is the capital of France?\nAnswer: Paris."
    assert check(continued).role_prompt == GOOD
    answering = GOOD + "\n\nCoral reefs form when free-swimming larvae attach to rocks near the shore."
    assert check(answering).role_prompt == GOOD  # a second paragraph not addressed to 'you' is the answer
    loop_in_sentence = "From now on, you are an expert, and " + "you can work with any data you want, and " * 12
    assert "repeats itself" in check(loop_in_sentence).reason


@pytest.mark.parametrize(
    "reply, status, reason",
    [
        ("I'm sorry, but I can't help with that request.", "refused", "refusal: I'm sorry, but I can't help"),
        ("As an AI language model, I cannot write role prompts about this topic.", "refused", "refusal: As an AI"),
        ("", "invalid", "empty reply"),
        ("From now on, you are a chemist.", "invalid", "too short"),
        (
            "The capital of France is Paris. It has been the capital for centuries and is home to many famous "
            "museums, monuments and restaurants that attract visitors from around the world.",
            "invalid",
            "not in the second person",
        ),
        (
            "I am a marine biologist and I have studied reefs for years; my work is my passion and I love it, "
            "so let me tell you about my research and my findings today.",
            "invalid",
            "written in the first person",
        ),
    ],
)
def test_refusals_and_off_format_replies_get_a_status_and_a_reason(reply, status, reason):
    verdict = check(reply)
    assert verdict.status == status and verdict.reason.startswith(reason) and verdict.role_prompt == ""


def test_answer_leakage_is_caught_but_restating_the_question_is_allowed():
    answer = (
        "Coral reefs form over thousands of years as colonies of tiny coral polyps build calcium carbonate "
        "skeletons on hard surfaces in warm shallow water."
    )
    leaking = GOOD + " You know that colonies of tiny coral polyps build calcium carbonate skeletons on hard surfaces."
    assert check(leaking, answer=answer).reason.startswith("leaks the reference answer")
    question = "Why do colonies of tiny coral polyps build calcium carbonate skeletons on hard surfaces?"
    assert check(leaking, question=question, answer=answer).status == "ok"  # the shared run is the question's
    math_answer = "Each box holds 12 apples, so 7 boxes hold 7 * 12 = 84 apples.\n#### 84"
    assert final_answer(math_answer) == "84"
    number_leak = GOOD + " You will find that the total is 84 apples."
    assert "final answer '84'" in check(number_leak, question="How many apples?", answer=math_answer).reason
    assert "reference answer 'Paris'" in check(GOOD + " You know Paris well.", answer="Paris").reason


def test_copying_a_few_shot_exemplar_is_invalid():
    copied = TEMPLATE.examples[0].role_prompt
    assert check(copied).reason.startswith("copies the few-shot example")


def test_template_renders_exemplars_as_turns_and_keeps_braces():
    question = "In Python, what does {'a': 1}.get('b', {}) return?"
    messages = TEMPLATE.messages(question)
    assert [m.role for m in messages[:3]] == ["system", "user", "assistant"]
    assert len(messages) == 2 + 2 * len(TEMPLATE.examples) and question in messages[-1].content
    structured = TEMPLATE.messages(question, structured=True)
    assert json.loads(structured[2].content)["role_prompt"] == TEMPLATE.examples[0].role_prompt
    assert TEMPLATE.cut_question("x" * 5000).endswith("[...]")
    fb = TEMPLATE.feedback_turns("bad", "too short (3 words; at least 15)")
    assert fb[0].role == "assistant" and "too short" in fb[1].content


def test_template_errors_name_the_file_and_field(tmp_path):
    with pytest.raises(ConfigError, match="expert-role-v1"):
        load_template("no-such-template")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nversion: '1'\nsystem: s\nuser: u\n")
    with pytest.raises(DataError, match="bad.yaml.*feedback"):
        load_template(bad)


def test_max_chars_keeps_only_short_rows_before_the_limit(data_dir, tmp_path):
    from selfprompt.annotate.run import AnnotateConfig, load_source

    cfg = AnnotateConfig(out=tmp_path / "o.jsonl", data="lima", data_dir=str(data_dir), max_chars=600, limit=96)
    rows = load_source(cfg)
    assert len(rows) == 96 and all(len(r.question) + len(r.answer) <= 600 for r in rows)
    first_96 = load_source(cfg.model_copy(update={"max_chars": None}))
    assert sum(len(r.question) + len(r.answer) <= 600 for r in first_96) < 96  # the filter changed the selection
