"""Roles a model writes are held to the checks annotation applies to a teacher's role: repetition,
a stated answer, second person, length. icl-self-prompt falls back and says why; self-prompt records it."""

from __future__ import annotations

import pytest

from selfprompt.evaluate.runner import ItemResult, summarize
from selfprompt.format import DEFAULT_FORMAT
from selfprompt.generate.backends.base import Backend, ChatResponse, Sampling
from selfprompt.generate.conditions import answer_questions, check_role, choose_role, get_condition, icl_prompt
from selfprompt.rolecheck import Checks, role_problem

FALLBACK_ROLE, ROLE_OPENER = icl_prompt().fallback_role, icl_prompt().opener
QUESTION = "A week after Monday, June 3, what day is it, and how many days have passed?"
GOOD = " an experienced calendar expert who counts the days between dates carefully and explains each step."
LOOP = (
    " a calendar expert who is a calendar expert who is a calendar expert who is a calendar expert who is "
    "a calendar expert who is a calendar expert who is a calendar expert"
)


@pytest.mark.parametrize(
    "written, reason",
    [
        (LOOP, "repeats itself"),
        (" an expert in calendars. The answer is 7 days.", "states an answer ('The answer is 7 days.')"),
        (" a careful solver, and the final answer is (B).", "states an answer"),
        (" a calendar expert. #### 7", "states an answer"),
        (" a calendar expert who writes $\\boxed{7}$ at the end.", "states an answer"),
        (" a calendar expert; the answer: yes, it is Monday.", "states an answer"),
        (" Bob.", "too short"),
        (
            " my assistant, and I want my answers checked by me and my team because I know my job.",
            "written in the first person",
        ),
        ("", "no role written"),
    ],
)
def test_a_written_role_that_fails_a_check_falls_back_with_its_reason(written, reason):
    role, problem, role_check = choose_role(written, QUESTION)
    assert (role, problem) == (FALLBACK_ROLE, "role-fallback")
    assert role_check.startswith(reason), role_check


@pytest.mark.parametrize(
    "written",
    [
        GOOD,
        " a calendar expert who makes sure the answer is correct and explains how you got it.",  # no value stated
        " a historian of calendars who knows why a week has 7 days and explains dates to you.",
    ],
)
def test_a_good_written_role_is_kept(written):
    assert choose_role(written, QUESTION) == (ROLE_OPENER + written.rstrip(), None, "ok")
    assert check_role(FALLBACK_ROLE, QUESTION) == "ok"  # the fallback passes its own checks


def test_restating_the_question_is_not_stating_an_answer():
    question = "Which novel has a computer say that the answer is 42, and who wrote it?"
    role = "From now on, you are a literature expert who knows the book where the answer is 42 and its author."
    assert role_problem(role, question=question, checks=Checks(min_words=7)) == ""
    assert role_problem(role, question="Which novel is about a computer?", checks=Checks(min_words=7)).startswith(
        "states an answer"
    )


class ScriptedRoles(Backend):
    """The real model for the answering step; the role step (the request prefilled with the role opener)
    returns the role written here for each question, to test what the pipeline does with it."""

    def __init__(self, inner: Backend, roles: dict[str, str]):
        super().__init__()
        self.inner, self.roles, self.name = inner, roles, inner.name

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    def generate(self, requests):
        role_step = [r for r in requests if r.assistant_prefix == ROLE_OPENER]
        if role_step:
            assert len(role_step) == len(requests)
            return [
                ChatResponse(text=self.roles[r.messages[-1].content.rsplit("Question: ", 1)[1]], model=self.model_id)
                for r in requests
            ]
        return self.inner.generate(requests)


def test_icl_self_prompt_answers_under_the_fallback_when_the_written_role_fails(hf_backend):
    questions = ["How many days are in 3 weeks?", "What is 6 times 7?", "Why do leaves fall in autumn?"]
    backend = ScriptedRoles(
        hf_backend,
        {
            questions[0]: " an expert in calendars. The answer is 21 days.",
            questions[1]: LOOP,
            questions[2]: " a botanist who studies how trees prepare for winter and explains it in plain words.",
        },
    )
    outs = answer_questions(backend, questions, "icl-self-prompt", Sampling(max_tokens=4))
    leak, loop, good = outs
    assert (leak.role, leak.problem) == (FALLBACK_ROLE, "role-fallback")
    assert leak.role_check == "states an answer ('The answer is 21 days.')"
    assert (loop.role, loop.problem) == (FALLBACK_ROLE, "role-fallback") and loop.role_check.startswith("repeats")
    botanist = ROLE_OPENER + " a botanist who studies how trees prepare for winter and explains it in plain words."
    assert (good.role, good.problem, good.role_check) == (botanist, None, "ok")
    for out in outs:  # the answering turn was asked under the role that was used, never the rejected one
        assert out.messages[0].content == out.role and out.raw


def test_a_self_prompt_role_is_checked_and_its_answer_kept():
    question = "How many days are in 3 weeks?"
    self_prompt, no_role_condition = get_condition("self-prompt"), get_condition("self-prompt-no-role")
    request = self_prompt.answer_request(question, Sampling(max_tokens=8))
    leaking = DEFAULT_FORMAT.render("From now on, you are a calendar expert. The answer is 21 days.", "3 * 7 = 21.")
    out = self_prompt.read_output(question, request, ChatResponse(text=leaking, model="m"))
    assert out.role_check == "states an answer ('The answer is 21 days.')"
    assert (out.answer, out.format_held) == ("3 * 7 = 21.", True)  # the answer is what the model wrote
    fine = DEFAULT_FORMAT.render("From now on, you are a calendar expert who counts days carefully.", "21.")
    assert self_prompt.read_output(question, request, ChatResponse(text=fine, model="m")).role_check == "ok"
    no_role = no_role_condition.answer_request(question, Sampling(max_tokens=8))
    assert no_role_condition.read_output(question, no_role, ChatResponse(text="21.", model="m")).role_check is None


def test_results_count_fallbacks_and_failed_checks():
    def item(problem, role_check):
        return ItemResult(
            task="gsm8k",
            condition="icl-self-prompt",
            id="x",
            question="q",
            reference="1",
            role="r",
            raw="1",
            answer="1",
            trigger_output=None,
            extracted_strict="1",
            extracted="1",
            extractor="last-number",
            correct_strict=True,
            correct=True,
            extraction_failed=False,
            problem=problem,
            role_check=role_check,
        )

    summary = summarize(
        [
            item("role-fallback", "repeats itself"),
            item("role-fallback", "states an answer"),
            item(None, "ok"),
            item(None, None),
        ],
        resamples=100,
        seed=0,
    )
    assert (summary["role_fallbacks"], summary["roles_failing_checks"]) == (2, 2)
