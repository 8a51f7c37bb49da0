"""The self-prompt format: exact inverse on any unicode, and tolerant parsing of real model output."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from selfprompt.errors import ConfigError
from selfprompt.format import DEFAULT_FORMAT, RoleDecided, StreamParser, get_format
from selfprompt.generate.backends import ChatRequest, Sampling
from selfprompt.records import Message

FMT = DEFAULT_FORMAT
# Text that mixes arbitrary unicode with pieces of the markers, escaped or not.
MARKER_BITS = st.sampled_from(["<role>", "</role>", "<\\/role>", "<\\\\/role>", "\\", "<", "/", "\n", "\n\n", "role>"])
TEXT = st.lists(st.one_of(st.text(max_size=12), MARKER_BITS), max_size=12).map("".join)


@settings(max_examples=400, deadline=None)
@given(role=TEXT, answer=TEXT)
@example(role="</role>", answer="</role>\n\n<role>\nx\n</role>\n\n")
@example(role="a\n</role>\n\nb", answer="")
@example(role="<\\/role>\\", answer="<role>")
def test_render_parse_exact_inverse(role, answer):
    parsed = FMT.parse(FMT.render(role, answer))
    assert parsed.held and parsed.problem is None
    assert (parsed.role, parsed.answer) == (role, answer)


@settings(max_examples=200, deadline=None)
@given(role=TEXT)
def test_escaping_is_a_bijection(role):
    escaped = FMT.escape_role(role)
    assert FMT.close_tag not in escaped
    assert FMT.unescape_role(escaped) == role


@settings(max_examples=200, deadline=None)
@given(text=TEXT)
def test_parse_never_raises_on_arbitrary_text(text):
    parsed = FMT.parse(text)
    assert isinstance(parsed.answer, str)
    assert parsed.held == (parsed.problem is None)


# Pieces a model's output is made of, malformed ones included: tags in any case and layout, blank lines,
# role-like and answer-like sentences, and arbitrary text.
FRAGMENTS = st.one_of(
    st.sampled_from(
        [
            "<role>",
            "</role>",
            "<role>\n",
            "\n</role>\n\n",
            "</Role>",
            "<ROLE>",
            "<\\/role>",
            "\n",
            "\n\n",
            " ",
            "From now on, you are a chemist. ",
            "You are a teacher.",
            "The answer is 42.",
            "Janet sells eggs. ",
            "#### 7",
            "```py\nx = 1\n```",
            "Sure! ",
            "\t",
            "\u00a0",
        ]
    ),
    TEXT,
)


def _stream(text: str, cuts: list[int]):
    """Feed `text` to a StreamParser in the pieces `cuts` make; (RoleDecided, answer, events)."""
    borders = sorted({min(c, len(text)) for c in cuts} | {0, len(text)})
    parser = StreamParser(FMT)
    events = []
    for a, b in zip(borders, borders[1:]):
        events += parser.feed(text[a:b])
    events += parser.finish()
    decided = [e for e in events if isinstance(e, RoleDecided)]
    assert len(decided) == 1 and events[0] is decided[0], "one role decision, before any answer text"
    return decided[0], "".join(e for e in events[1:] if isinstance(e, str)), events


@settings(max_examples=300, deadline=None)
@given(role=TEXT, answer=TEXT, cuts=st.lists(st.integers(0, 400), max_size=8))
def test_stream_parser_agrees_with_parse_on_the_trained_format(role, answer, cuts):
    """The exact format, cut anywhere (inside a tag, between the newlines around it): the stream is parse()."""
    text = FMT.render(role, answer)
    decided, streamed, _ = _stream(text, cuts)
    assert (decided.role, decided.held, decided.problem, streamed) == (role, True, None, answer)


@settings(max_examples=500, deadline=None)
@given(parts=st.lists(FRAGMENTS, max_size=10), cuts=st.lists(st.integers(0, 300), max_size=10))
@example(parts=["<role>", "You are a teacher.", "</Role>", "\n", "The answer is 42.", " "], cuts=[3, 20, 30])
@example(parts=["Sure! ", "<ROLE>", "You are a teacher.", "\n\n", "The answer is 42."], cuts=[1, 9])
@example(parts=["From now on, you are a chemist. ", "\n\n", "The answer is 42.", "</role>"], cuts=[5])
@example(parts=["<role>\n", "You are a teacher.", "</role>", "\n", " ", "\n", "x", "\t"], cuts=[8, 30, 31])
def test_stream_parser_agrees_with_parse_on_any_text_and_chunking(parts, cuts):
    """Malformed outputs too (tags of any case, unclosed or missing roles, no role): role, held, problem and
    the answer pieces joined are those parse() gives for the whole text."""
    text = "".join(parts)
    parsed = FMT.parse(text)
    decided, streamed, _ = _stream(text, cuts)
    assert (decided.role, decided.held, decided.problem) == (parsed.role, parsed.held, parsed.problem)
    assert streamed == parsed.answer


def test_stream_parser_streams_the_answer_before_the_end():
    """The role is given as soon as it is certain, and the answer follows piece by piece."""
    parser = StreamParser(FMT)
    assert parser.feed("<role>\nYou are a chemist.\n</ro") == []
    assert parser.feed("le>\n") == []  # one newline: the exact layout may still hold
    assert parser.feed("\nWater") == [RoleDecided("You are a chemist.", True, None), "Water"]
    assert parser.feed(" boils.") == [" boils."]
    sloppy = StreamParser(FMT)
    assert sloppy.feed("<role>You are a chemist.</role>  ") == []  # no answer text yet
    assert sloppy.feed("Water  ") == [RoleDecided("You are a chemist.", False, "tag-layout"), "Water"]
    assert sloppy.feed("boils.\n") == ["  boils."] and sloppy.finish() == []  # trailing blanks dropped
    untagged = StreamParser(FMT)
    assert untagged.feed("Water boils at 100 C.") == []  # a tag further on would change the reading
    assert untagged.finish() == [RoleDecided(None, False, "no-role"), "Water boils at 100 C."]


def test_format_registry():
    assert get_format("role-tags-v1") is FMT and get_format("role-tags") is FMT
    with pytest.raises(ConfigError, match="role-tags"):
        get_format("nope")


# --- real model output ------------------------------------------------------------------------------
def _ask(backend, question, prefix="", max_tokens=16):
    req = ChatRequest(
        messages=[Message(role="user", content=question)],
        sampling=Sampling(max_tokens=max_tokens),
        assistant_prefix=prefix,
    )
    return backend.generate([req])[0]


@pytest.mark.slow
def test_parse_real_outputs(hf_backend):
    # An untuned model writes no markers: the whole text is the answer, and the format did not hold.
    plain = _ask(hf_backend, "Name a primary colour.")
    parsed = FMT.parse(plain.text)
    assert not parsed.held and parsed.answer == plain.text.strip()
    assert parsed.role is None or parsed.problem == "heuristic-role"

    # Forced into the role block and cut off by max_tokens before closing it: truncated output.
    prefix = FMT.open_tag + "\nFrom now on, you are"
    cut = _ask(hf_backend, "Why is the sea salty?", prefix=prefix, max_tokens=6)
    assert cut.finish_reason == "length" and FMT.close_tag not in cut.text
    parsed = FMT.parse(prefix + cut.text)
    assert (parsed.held, parsed.problem, parsed.answer) == (False, "unclosed-role", "")
    assert parsed.role == ("From now on, you are" + cut.text).strip()

    # A real role and answer rendered in the format, then truncated at every point: never raises,
    # and only the complete text claims the format held.
    full = FMT.render("From now on, you are" + cut.text, plain.text)
    closed_at = full.find(FMT.close_tag) + len(FMT.close_tag)
    for end in range(0, len(full) + 1, 3):
        parsed = FMT.parse(full[:end])
        assert parsed.held == (end >= closed_at)
    assert FMT.parse(full).answer == plain.text


# --- a malformed role block never loses the answer --------------------------------------------------
def test_unclosed_role_then_blank_line_keeps_the_answer():
    """The issue's example: `<role>` never closed, a blank line, then the answer (we used to return '')."""
    text = (
        "<role>\nFrom now on, you are an excellent math teacher.\n\n"
        "Janet's ducks lay 16 eggs. She eats 3 and bakes with 4, so she sells 9 at $2. The answer is 18."
    )
    parsed = FMT.parse(text)
    assert (parsed.role, parsed.held, parsed.problem) == (
        "From now on, you are an excellent math teacher.",
        False,
        "unclosed-role",
    )
    assert parsed.answer == (
        "Janet's ducks lay 16 eggs. She eats 3 and bakes with 4, so she sells 9 at $2. The answer is 18."
    )


@pytest.mark.parametrize(
    "text, role, answer",
    [
        # the answer written inside a role block that never closes
        (
            "<role>\nYou are a math teacher. She sells 9 eggs at $2 each. The answer is 18.",
            "You are a math teacher. She sells 9 eggs at $2 each.",
            "The answer is 18.",
        ),
        ("<role>\nYou are a careful solver. Answer: 18", "You are a careful solver.", "Answer: 18"),
        (
            "<role>\nYou are a senior Python developer.\n```python\ndef f():\n    return 1\n```",
            "You are a senior Python developer.",
            "```python\ndef f():\n    return 1\n```",
        ),
        # the answer before the role block
        ("The answer is 18.\n<role>\nYou are a math teacher.", "You are a math teacher.", "The answer is 18."),
        ("Sure!\n<role>\nYou are X.\n</role>\n\nThe answer is 18.", "You are X.", "Sure!\n\nThe answer is 18."),
        # a closing tag without an opening one, with the answer before it
        (
            "You are a math teacher. So the final answer is 18.\n</role>\n\n",
            "You are a math teacher.",
            "So the final answer is 18.",
        ),
        # tags present, but not the trained newlines, and the answer inside the block
        (
            "<role>You are a math teacher. The answer is $\\boxed{18}$.</role>",
            "You are a math teacher.",
            "The answer is $\\boxed{18}$.",
        ),
        # truncated while writing the role: there is no answer to lose
        ("<role>\nFrom now on, you are a chef with thirty", "From now on, you are a chef with thirty", ""),
    ],
)
def test_malformed_role_blocks_keep_the_answer(text, role, answer):
    parsed = FMT.parse(text)
    assert (parsed.role, parsed.answer, parsed.held) == (role, answer, False)


@pytest.mark.parametrize(
    "text",
    [
        "You are a genius to ask! 9 * 2 = 18. The answer is 18.",  # one paragraph: all answer
        "You are the 3rd person to ask.\n",
    ],
)
def test_an_untagged_single_paragraph_is_never_a_role(text):
    parsed = FMT.parse(text)
    assert (parsed.role, parsed.answer, parsed.problem) == (None, text.strip(), "no-role")


WORDS = st.text(alphabet="abcdefghij XYZ,", min_size=1, max_size=40).filter(lambda t: t.strip())


@settings(max_examples=300, deadline=None)
@given(
    role=WORDS,
    reasoning=WORDS,
    number=st.integers(-(10**6), 10**6),
    leading=st.sampled_from(["", "Sure!\n"]),
    shape=st.sampled_from(["no-close", "no-close-no-blank", "no-open", "no-newlines", "answer-first"]),
)
def test_a_stated_answer_survives_any_malformed_role_block(role, reasoning, number, leading, shape):
    """Whatever the role block's fault, the sentence that states the answer ends up in the answer."""
    stated = f"The answer is {number}."
    text = {
        "no-close": f"{leading}<role>\nYou are {role}.\n\n{reasoning}. {stated}",
        "no-close-no-blank": f"{leading}<role>\nYou are {role}. {reasoning}. {stated}",
        "no-open": f"{leading}You are {role}. {stated}\n</role>\n\n{reasoning}",
        "no-newlines": f"{leading}<role>You are {role}.</role>{reasoning}. {stated}",
        "answer-first": f"{reasoning}. {stated}\n<role>\nYou are {role}.",
    }[shape]
    parsed = FMT.parse(text)
    assert stated in parsed.answer
    assert stated not in (parsed.role or "")


def test_outputs_of_conditions_without_a_role_are_never_parsed_as_roles():
    from selfprompt.generate.backends.base import ChatResponse
    from selfprompt.generate.conditions import CONDITIONS, get_condition, read_answer

    looks_like_a_role = "You are a careful reader.\n\nThe answer is 18."
    tagged = FMT.render("You are X.", "The answer is 18.")
    for condition in ("plain", "manual-role", "icl-self-prompt"):
        assert condition in CONDITIONS
        for text in (looks_like_a_role, tagged, "<role>\nYou are X.\n\nThe answer is 18."):
            assert read_answer(condition, text) == (None, text.strip(), None, None), condition
    plain = get_condition("plain")
    request = plain.answer_request("Q?", Sampling(max_tokens=8))
    out = plain.read_output("Q?", request, ChatResponse(text=looks_like_a_role, model="m"))
    assert (out.role, out.answer, out.format_held, out.problem) == (None, looks_like_a_role.strip(), None, None)
    # the self-prompt conditions are parsed
    assert read_answer("self-prompt", looks_like_a_role)[:2] == ("You are a careful reader.", "The answer is 18.")
    assert read_answer("self-prompt-no-role", FMT.role_prefix("") + "You are a careful reader.")[:3] == (
        "",
        "You are a careful reader.",
        True,
    )
    # a condition named by another tool: a tagged role is read, an untagged opening is just the answer
    assert read_answer("baseline", looks_like_a_role)[:2] == (None, looks_like_a_role.strip())
    assert read_answer("their-self-prompt", tagged)[:3] == ("You are X.", "The answer is 18.", True)


# --- malformed shapes found by a hostile tester (each read through the self-prompt condition) ---------------
@pytest.mark.parametrize(
    "text, role, answer, problem",
    [
        # unclosed, no blank line: the role is its role-like first line, the lines after it the answer
        (
            "<role>\nYou are a math teacher.\nShe makes 18 dollars.",
            "You are a math teacher.",
            "She makes 18 dollars.",
            "unclosed-role",
        ),
        (
            "<role>\nYou are a math teacher.\n16 - 3 - 4 = 9 eggs, 9 * 2 = 18 dollars.",
            "You are a math teacher.",
            "16 - 3 - 4 = 9 eggs, 9 * 2 = 18 dollars.",
            "unclosed-role",
        ),
        ("<role>\nYou are a math teacher.\nResult: 18.", "You are a math teacher.", "Result: 18.", "unclosed-role"),
        ("<role>\nYou are a math teacher.\n; Answer = 18", "You are a math teacher.", "; Answer = 18", "unclosed-role"),
        # several role-like lines stay role
        (
            "<role>\nFrom now on, you are a math teacher.\nYou check each step.\nShe makes 18 dollars.",
            "From now on, you are a math teacher.\nYou check each step.",
            "She makes 18 dollars.",
            "unclosed-role",
        ),
        # unclosed on one line, holding the answer without a cue
        (
            "<role>\nYou are a teacher. Janet makes $18 a day.",
            "You are a teacher.",
            "Janet makes $18 a day.",
            "unclosed-role",
        ),
        # a role cut while being written, in several sentences, is still all role
        (
            "<role>\nYou are a chef. You have cooked for thirty",
            "You are a chef. You have cooked for thirty",
            "",
            "unclosed-role",
        ),
        # tags in another case are still tags
        (
            "<role>\nYou are a math teacher.</Role>\nShe makes 18 dollars.",
            "You are a math teacher.",
            "She makes 18 dollars.",
            "tag-layout",
        ),
        (
            "<ROLE>\nYou are a math teacher.\n</ROLE>\n\nShe makes 18 dollars.",
            "You are a math teacher.",
            "She makes 18 dollars.",
            "tag-layout",
        ),
        (
            "<Role>\nYou are a math teacher.\nShe makes 18 dollars.",
            "You are a math teacher.",
            "She makes 18 dollars.",
            "unclosed-role",
        ),
        # a closed role holding the answer, with nothing after it
        (
            "<role>\nYou are a teacher. Janet makes $18 a day.\n</role>",
            "You are a teacher.",
            "Janet makes $18 a day.",
            "answer-in-role",
        ),
        (
            "You are a teacher. Janet makes $18 a day.\n</role>",
            "You are a teacher.",
            "Janet makes $18 a day.",
            "missing-open-tag",
        ),
        ("<role>\nJanet makes $18 a day.\n</role>", "", "Janet makes $18 a day.", "answer-in-role"),
        # the trained newlines missing around correct tags: not the format, though nothing is lost
        (
            "<role>You are a historian.</role>The war ended in 1945.",
            "You are a historian.",
            "The war ended in 1945.",
            "tag-layout",
        ),
    ],
)
def test_malformed_role_shapes_never_lose_the_answer(text, role, answer, problem):
    from selfprompt.generate.conditions import read_answer

    assert read_answer("self-prompt", text) == (role, answer, False, problem)
