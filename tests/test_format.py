"""The self-prompt format: exact inverse on any unicode, and tolerant parsing of real model output."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from selfprompt.errors import ConfigError
from selfprompt.format import DEFAULT_FORMAT, get_format
from selfprompt.generate.backends import ChatRequest, Sampling
from selfprompt.generate.cli import RoleAnswerSplitter
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


@settings(max_examples=200, deadline=None)
@given(role=TEXT, answer=TEXT, cuts=st.lists(st.integers(0, 400), max_size=8))
def test_stream_splitter_reassembles_any_chunking(role, answer, cuts):
    """`selfprompt ask` shows a streamed self-prompt output in two sections, whatever the chunk borders."""
    text = FMT.render(role, answer)
    borders = sorted({min(c, len(text)) for c in cuts} | {0, len(text)})
    splitter = RoleAnswerSplitter(FMT.open_tag, FMT.close_tag)
    events = []
    for a, b in zip(borders, borders[1:]):
        events += list(splitter.feed(text[a:b]))
    events += list(splitter.finish())
    sections: dict[str, str] = {}
    current = None
    for kind, value in events:
        if kind == "section":
            current = value
            sections[current] = ""
        else:
            sections[current] += value
    assert sections["Role prompt (written by the model)"] == FMT.escape_role(role)
    assert sections["Answer"] == answer.lstrip("\n")


def test_format_registry():
    assert get_format("role-tags-v1") is FMT and get_format("role-tags") is FMT
    with pytest.raises(ConfigError, match="role-tags"):
        get_format("nope")


# --- real model output ------------------------------------------------------------------------------
def _ask(backend, question, prefix="", max_tokens=16):
    req = ChatRequest(messages=[Message(role="user", content=question)],
                      sampling=Sampling(max_tokens=max_tokens), assistant_prefix=prefix)
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
