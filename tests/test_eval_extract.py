"""Extractors on realistic model outputs, one group per answer type, plus the role-first rule."""

from __future__ import annotations

import pytest

from selfprompt.evaluate.extract import ExtractInput, extract, is_correct, normalize_number
from selfprompt.format import DEFAULT_FORMAT

NUMBER_CHAIN = ["trigger-number", "answer-is-number", "boxed-number", "last-number"]
CHOICE_CHAIN = ["trigger-choice", "answer-is-choice", "paren-choice", "line-choice", "option-text"]
YES_NO_CHAIN = ["trigger-yes-no", "answer-is-yes-no", "first-yes-no"]
WORD_CHAIN = ["trigger-word", "answer-is-word", "quoted-word", "last-word"]
CSQA = {"A": "bank", "B": "library", "C": "department store", "D": "mall", "E": "new york"}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("$1,234.50", "1234.5"),
        ("18.00", "18"),
        ("-7", "-7"),
        ("about 3.5 hours", "3.5"),
        ("1,000,000 people", "1000000"),
        ("no digits", None),
        ("−12 degrees", "-12"),
        (".5", "0.5"),
    ],
)
def test_normalize_number(text, expected):
    assert normalize_number(text) == expected


@pytest.mark.parametrize(
    "answer, trigger, expected, extractor",
    [
        ("She sells 16 - 3 - 4 = 9 eggs.\n9 * 2 = 18", " $18.", "18", "trigger-number"),
        ("Janet has 16 eggs. She uses 7. The answer is $1,234.", None, "1234", "answer-is-number"),
        ("So the total is 5-3 = 2 apples left.\nFinal answer: 2 apples", None, "2", "answer-is-number"),
        (r"We get \boxed{42} as the result, not 7.", None, "42", "boxed-number"),
        ("First 12 + 8 = 20, then 20 / 4 = 5 cookies each.", None, "5", "last-number"),
        ("The temperature dropped to -4 degrees.", None, "-4", "last-number"),
        ("It costs 2.75 dollars per pound, so 11 pounds cost 30.25 dollars.", None, "30.25", "last-number"),
        ("Let me think about the eggs first.", None, None, None),
    ],
)
def test_number_extraction(answer, trigger, expected, extractor):
    ex = extract(NUMBER_CHAIN, ExtractInput(answer=answer, trigger_output=trigger))
    assert (ex.lenient, ex.extractor) == (expected, extractor)


def test_a_stated_non_answer_is_abstained_not_failed():
    """Saying one cannot answer is an abstention (scored wrong, counted apart); saying nothing is a failure."""
    said = extract(NUMBER_CHAIN, ExtractInput(answer="I am not sure how to solve this."))
    assert (said.status, said.lenient, said.abstained) == ("abstained", None, True)
    silent = extract(NUMBER_CHAIN, ExtractInput(answer="Let me think about the eggs first."))
    assert (silent.status, silent.lenient, silent.abstained) == ("failed", None, False)


def test_strict_is_the_trigger_and_lenient_falls_back():
    ex = extract(NUMBER_CHAIN, ExtractInput(answer="12 + 6 = 18 dollars", trigger_output=" the amount she spends"))
    assert ex.strict is None and ex.lenient == "18" and ex.extractor == "last-number"
    # an explicit non-answer in the trigger is final: no fallback may replace it
    ex = extract(NUMBER_CHAIN, ExtractInput(answer="12 + 6 = 18 dollars", trigger_output=" unclear, sorry"))
    assert ex.strict is None and ex.lenient is None and ex.abstained and ex.status == "abstained"
    no_pass = extract(NUMBER_CHAIN, ExtractInput(answer="The answer is 18."))
    assert no_pass.tried[0] == "answer-is-number" and no_pass.strict == "18"


@pytest.mark.parametrize(
    "answer, trigger, expected",
    [
        ("Revolving doors are common in banks for security.", " (A) bank.", "A"),
        ("Let me think.", " B", "B"),
        ("Let me think.", " library, because books are kept there.", "B"),
        ("The answer is (C).", None, "C"),
        ("So the correct answer is: D", None, "D"),
        ("Answer: E", None, "E"),
        ("I would pick option B here.", None, "B"),
        ("B. library\nLibraries have many books.", None, "B"),
        ("A security door is typical for a (A) bank.", None, "A"),
        ("Security matters most at a department store.", None, "C"),
        ("(A) bank (B) library (C) department store (D) mall (E) new york", None, None),
        ("A door can be anywhere.", None, None),
    ],
)
def test_choice_extraction(answer, trigger, expected):
    assert extract(CHOICE_CHAIN, ExtractInput(answer=answer, trigger_output=trigger, choices=CSQA)).lenient == expected


def test_choice_article_a_is_not_a_letter():
    ex = extract(CHOICE_CHAIN, ExtractInput(answer="x", trigger_output=" a library, so (B).", choices=CSQA))
    assert ex.strict == "B"


@pytest.mark.parametrize(
    "answer, trigger, expected",
    [
        ("Frost happens in December.", " Yes.", "yes"),
        ("Aristotle died long before laptops existed.", " no", "no"),
        ("No, Aristotle lived in ancient Greece, long before laptops.", None, "no"),
        ("Thinking about it, the answer is yes.", None, "yes"),
        ("The coin was flipped twice so it is heads up.", None, None),
    ],
)
def test_yes_no_extraction(answer, trigger, expected):
    assert extract(YES_NO_CHAIN, ExtractInput(answer=answer, trigger_output=trigger)).lenient == expected


@pytest.mark.parametrize(
    "answer, trigger, expected",
    [
        ("The last letters are y, a, j, o.", ' "yajo".', "yajo"),
        ("The last letters are y, a, j, o.", " yajo", "yajo"),
        ('Concatenating them gives "Yajo".', None, "yajo"),
        ("So the answer is yajo", None, "yajo"),
        ("Whitney -> y, Erika -> a, Tj -> j, Benito -> o: yajo", None, "yajo"),
    ],
)
def test_word_extraction(answer, trigger, expected):
    ex = extract(WORD_CHAIN, ExtractInput(answer=answer, trigger_output=trigger))
    assert ex.lenient == expected and is_correct("text", ex.lenient, "yajo")


def test_code_block_prefers_the_entry_point():
    answer = (
        "Here is a helper:\n```python\ndef helper(x):\n    return x\n```\nAnd the function:\n"
        "```python\ndef add(a, b):\n    return a + b\n```\nIt adds."
    )
    ex = extract(["code-block", "code-raw"], ExtractInput(answer=answer, entry_point="add"))
    assert ex.lenient.strip() == "def add(a, b):\n    return a + b" and ex.extractor == "code-block"


def test_unfenced_and_truncated_code():
    raw = extract(["code-block", "code-raw"], ExtractInput(answer="    return sorted(set(l))", entry_point="unique"))
    assert raw.extractor == "code-raw" and "sorted" in raw.lenient
    cut = extract(["code-block", "code-raw"], ExtractInput(answer="```python\ndef f():\n    return 1", entry_point="f"))
    assert cut.extractor == "code-block" and cut.lenient.startswith("def f")
    none = extract(["code-block", "code-raw"], ExtractInput(answer="I cannot write this function.", entry_point="f"))
    assert none.lenient is None


def test_role_is_removed_before_extraction():
    """A number inside the role ("20 years") must never become the answer."""
    text = DEFAULT_FORMAT.render(
        "From now on, you are a math teacher with 20 years of experience.",
        "She has 16 - 3 - 4 = 9 eggs and earns 9 * 2 = 18 dollars.",
    )
    parsed = DEFAULT_FORMAT.parse(text)
    assert extract(NUMBER_CHAIN, ExtractInput(answer=parsed.answer)).lenient == "18"
    assert extract(["last-number"], ExtractInput(answer="From now on, you are 20")).lenient == "20"  # control


def test_is_correct_compares_numbers_by_value():
    assert is_correct("number", "18", "18.0") and not is_correct("number", "18", "19")
    assert is_correct("yes_no", "yes", "Yes") and not is_correct("choice", None, "A")


@pytest.mark.parametrize("continuation,expected", [(":\n\nNo, it could not.", "no"), (":\n\n18 dollars.", "18")])
def test_trigger_pass_is_not_cut_at_a_blank_line(continuation, expected):
    """Measured on a tuned 135M model: 'Therefore, the answer (Yes or No) is' went on ':\n\nNo'. A
    blank-line stop cut every such continuation to ':' and left nothing to extract."""
    from selfprompt.evaluate.runner import EvalConfig, trigger_sampling
    from selfprompt.generate.backends.hf import cut_at_stop

    stops = trigger_sampling(EvalConfig(tasks=["strategyqa"], data_dir=".", out=".")).stop
    kept, _ = cut_at_stop(continuation, stops)
    chain = YES_NO_CHAIN if expected == "no" else NUMBER_CHAIN
    ex = extract(chain, ExtractInput(answer="It depends on many things.", trigger_output=kept))
    assert ex.strict == expected
