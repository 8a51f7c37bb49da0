"""Gold cases, letter choices where an explicit option letter and a DIFFERENT option's text stand together.

Found by bench/scorer_agreement.py: " (C) False, False." was read as B because "False, False" is
option B's text, though the model wrote the letter C. The rule (docs/evaluate.md, "Extraction"):
a letter written as a label ("(C)", "C.", "C)", "C:", "**C**", "Answer: C", a boxed letter) is the
explicit answer, and an option's text never overrides it, whether the text stands before or after
the letter and whether the options are words or numbers. The text fills in only when no letter is
written; a text offered as an alternative to the letter ("False, False or (C)") is a hedge. In the
trigger continuation the first answer stated still counts, unless a self-correction follows.

These are appended after every other case so that the ids of the earlier records stay as they were.
"""

from __future__ import annotations

from case import Case


def cases(task: str, rows: list[tuple]) -> list[Case]:
    return [Case(task, *row, *([""] if len(row) == 5 else [])) for row in rows]


# mmlu-3: (A) True, True (B) False, False (C) True, False (D) False, True -> B
# mmlu-0: degree of Q(sqrt(2), sqrt(3), sqrt(18)): (A) 0 (B) 4 (C) 2 (D) 6 -> B
MMLU = [
    (
        "mmlu-3",
        "small",
        "Statement 1 is True. Statement 2 is False.",
        " (C) False, False.",
        "strict:C",
        "scorer agreement: the letter C wins over option B's text after it",
    ),
    (
        "mmlu-3",
        "small",
        "Statement 1 is True. Statement 2 is False.",
        " (C) True, False.",
        "strict:C",
        "the letter with its own text",
    ),
    (
        "mmlu-3",
        "small",
        "Statement 1 is True. Statement 2 is False.",
        " False, False (D)",
        "strict:D",
        "scorer agreement: the letter D wins over option B's text before it",
    ),
    ("mmlu-3", "small", "Statement 1 is True.", " C. False, False", "strict:C", "'C.' label, B's text"),
    ("mmlu-3", "small", "Statement 1 is True.", " C) False, False", "strict:C", "'C)' label, B's text"),
    ("mmlu-3", "small", "Statement 1 is True.", " C: False, False", "strict:C", "'C:' label, B's text"),
    ("mmlu-3", "chat", "Statement 1 is true.", " **C** False, False", "strict:C", "bold letter, B's text"),
    ("mmlu-3", "chat", "Statement 1 is true.", " **(C) False, False**", "strict:C", "bold label and text"),
    ("mmlu-3", "chat", "Statement 1 is true.", " Answer: C False, False", "strict:C", "letter after a cue"),
    ("mmlu-3", "chat", "Statement 1 is true.", " $\\boxed{C}$ False, False", "strict:C", "boxed letter, B's text"),
    (
        "mmlu-3",
        "small",
        "Statement 1 is True.",
        " False, False, so (C).",
        "strict:C",
        "the text first, the letter later in the same sentence",
    ),
    ("mmlu-3", "small", "Statement 1 is True.", " (c) False, False", "strict:C", "a lower-case label right away"),
    (
        "mmlu-3",
        "small",
        "Statement 1 is True.",
        " False, False or (C).",
        "abstained",
        "B's text offered as an alternative to the letter C: a hedge",
    ),
    (
        "mmlu-3",
        "small",
        "Statement 1 is True.",
        " (C) is wrong; False, False.",
        "strict:B",
        "the letter is ruled out, the text fills in",
    ),
    (
        "mmlu-3",
        "chat",
        "Statement 1 is false. Statement 2 is false.",
        " (C) False, False. Wait, actually it is (B) False, False.",
        "strict:B",
        "a self-correction still wins",
    ),
    (
        "mmlu-3",
        "chat",
        "Statement 1 is false: a factor group of a non-Abelian group can be Abelian. Statement 2 is "
        "false.\n\nThe answer is (C) False, False.",
        None,
        "strict:C",
        "first pass: the cued letter, B's text",
    ),
    (
        "mmlu-3",
        "chat",
        "Both statements are false.\n\nThe answer is False, False (C).",
        None,
        "strict:C",
        "first pass: the cue, B's text, then the letter",
    ),
    (
        "mmlu-3",
        "chat",
        "Both statements are false.\n\n**C. False, False**",
        None,
        "lenient:C",
        "first pass: a line labelled C holding B's text",
    ),
    (
        "mmlu-3",
        "chat",
        "Both statements are false: False, False (C)",
        None,
        "lenient:C",
        "first pass: B's text labelled (C), no cue",
    ),
    (
        "mmlu-3",
        "chat",
        "Both false: (C) False, False. Wait, actually I mislabeled it: the answer is (B) False, False.",
        None,
        "strict:B",
        "first pass: the correction wins",
    ),
    ("mmlu-0", "small", "The degree is 2.", " (D) 2.", "strict:D", "number options: the letter D wins over C's text"),
    ("mmlu-0", "small", "The degree is 2.", " 2 (D).", "strict:D", "number options: the text first, the letter D"),
    ("mmlu-0", "chat", "The degree is 2.", " **(D)** 2", "strict:D", "bold label, C's number"),
    ("mmlu-0", "chat", "The degree is 2.", " $\\boxed{D}$ 2", "strict:D", "boxed letter, C's number"),
    ("mmlu-0", "chat", "The degree is 2.", " Answer: D. 2", "strict:D", "cue, letter, C's number"),
    (
        "mmlu-0",
        "chat",
        "The degree is 2 * 2 = 4, which is option B.",
        " 4 (C)",
        "strict:C",
        "B's number labelled C: the letter, a wrong pick read as written",
    ),
    ("mmlu-0", "small", "The degree is 4.", " 4 or (C).", "abstained", "B's number or the letter C: a hedge"),
    (
        "mmlu-0",
        "small",
        "The degree is 4.",
        " (B) 4.\n\nThe answer is (C) 0.",
        "strict:B",
        "scorer agreement: two explicit answers without a correction cue; the first in the continuation counts",
    ),
    (
        "mmlu-0",
        "small",
        "The degree is 4.",
        " (B) 2.\n\nThe answer is (C) 0.",
        "strict:B",
        "the first label, though its text is C's and a second answer follows",
    ),
    (
        "mmlu-0",
        "chat",
        "sqrt(18) adds nothing, so the degree is 4.\n\nThe answer is 2 (D).",
        None,
        "strict:D",
        "first pass: the cue, C's number, then the letter D",
    ),
]

# bank (A) library (B) department store (C) mall (D) new york (E)
CSQA_ITEM = "1afa02df02c908a558b4036e80242fac"
COMMONSENSEQA = [
    (CSQA_ITEM, "small", "You can borrow books there.", " (B) bank.", "strict:B", "word options: letter B, A's text"),
    (CSQA_ITEM, "small", "You can borrow books there.", " bank (B)", "strict:B", "A's text, then the letter B"),
    (CSQA_ITEM, "chat", "You can borrow books there.", " **B. bank**", "strict:B", "bold label, A's text"),
    (
        CSQA_ITEM,
        "chat",
        "A place that lends books.\n\nThe answer is bank (B).",
        None,
        "strict:B",
        "first pass: the cue, A's text, the letter B",
    ),
    (CSQA_ITEM, "small", "You can borrow books there.", " bank or (B)", "abstained", "A's text or the letter B"),
    (
        CSQA_ITEM,
        "small",
        "Money is kept there.",
        " Bank. Option B is a library, which lends books.",
        "strict:A",
        "'Option B is ...' describes an option, it is no label: the text named first counts",
    ),
]

# the atom (A) the electron (B) the nucleus (C) the proton (D)
ARC = [
    (
        "MCAS_2003_8_11",
        "small",
        "The nucleus is at the center.",
        " (C) the proton.",
        "strict:C",
        "sentence options: letter C, D's text",
    ),
    (
        "MCAS_2003_8_11",
        "small",
        "The nucleus is at the center.",
        " the proton (C)",
        "strict:C",
        "D's text, then the letter C",
    ),
    (
        "MCAS_2003_8_11",
        "chat",
        "It is the nucleus.\n\n**Answer: C** — the proton",
        None,
        "strict:C",
        "first pass: bold cue and letter, D's text",
    ),
]

# aqua-2: (A) 36 (B) 15 (C) 17 (D) 5 (E) 7
AQUA = [
    ("aqua-2", "small", "So the answer is 7.", " (D) 7", "strict:D", "number options: letter D, E's number"),
    ("aqua-2", "small", "So the answer is 7.", " 7 (D)", "strict:D", "E's number, then the letter D"),
]

CASES = [
    *cases("mmlu", MMLU),
    *cases("commonsenseqa", COMMONSENSEQA),
    *cases("arc_challenge", ARC),
    *cases("aqua", AQUA),
]
