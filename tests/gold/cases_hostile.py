"""Gold cases from a hostile tester's report: abstentions in near-variant wording, hedges, rejected options,
expressions in choice triggers, self-corrections, and right answers missed. Same conventions as cases_numbers.py;
the trigger ":" states nothing, so the first pass decides."""

from __future__ import annotations

from case import Case

G0, S0, S1, CF0, D0, M0, M1, A1, L0 = (
    "gsm8k-0",
    "strategyqa-0",
    "strategyqa-1",
    "coin_flip-0",
    "date_understanding-0",
    "mmlu-0",
    "mmlu-1",
    "aqua-1",
    "last_letters-0",
)
C0 = "1afa02df02c908a558b4036e80242fac"  # revolving door: (A) bank ... (E) new york
G_OUT = "16 - 3 - 4 = 9, 9 * 2 = 18"
M_OUT = "The degree is 4."  # mmlu-0 options: A 0, B 4, C 2, D 6
LL = "Whitney Erika Tj Benito"

ROWS = [
    # 1. abstentions in the trigger: never rescued by a first-pass answer
    *[
        ("gsm8k", G0, "small", G_OUT, t, "abstained")
        for t in (
            " Sorry, I don't know the answer.",
            " I really don't know.",
            " don't know",
            " I do not know the amount.",
            " I'm unsure.",
            " impossible to calculate.",
            " cannot be computed.",
            " This cannot be solved.",
            " the problem is unsolvable.",
            " cannot be found.",
            " I apologize, but I cannot solve this problem.",
            " I refuse to answer.",
            " I can't be certain.",
            " no answer.",
            " not a number.",
            " NaN",
            " ambiguous.",
            " the information is missing.",
            " not specified in the problem.",
            " undefined.",
            " none.",
        )
    ],
    *[
        ("strategyqa", S0, "small", "Frost is common in December graduations, yes.", t, "abstained")
        for t in (
            " Hard to say.",
            " Inconclusive.",
            " It's a coin toss.",
            " Neither.",
            " 50/50.",
            " Undecided.",
            " I would say it is uncertain.",
        )
    ],
    *[
        ("coin_flip", CF0, "small", "Heads after an even number of flips, so yes.", t, "abstained")
        for t in (" could go either way.", " Both outcomes are possible.")
    ],
    (
        "date_understanding",
        D0,
        "small",
        "Yesterday was 04/30/2021 so today is 05/01/2021",
        " Sorry, I don't know the date.",
        "abstained",
    ),
    *[
        ("commonsenseqa", C0, "small", "Security is needed at a bank.", t, "abstained")
        for t in (" all of the above.", " all of them.", " any of them.")
    ],
    *[("mmlu", M0, "small", M_OUT, t, "abstained") for t in (" not listed.", " not given among the choices.")],
    # 2. hedges
    ("mmlu", M0, "small", M_OUT, " between B and D.", "abstained"),
    ("mmlu", M0, "small", M_OUT, " B and D are both plausible.", "abstained"),
    (
        "aqua",
        A1,
        "chat",
        "Let the original price be x; 0.78x - 20 = x/2 + 1.9.",
        " E, unless the coupon applies first, then D.",
        "abstained",
    ),
    ("commonsenseqa", C0, "small", "Security is needed at a bank.", " a department store or a mall", "abstained"),
    (
        "strategyqa",
        S1,
        "small",
        "Hydrogen has atomic number 1, squared is 1, fewer than 5 Spice Girls, so no.",
        " Yes, no, maybe.",
        "abstained",
    ),
    # 3. rejected options are never taken
    ("mmlu", M0, "chat", "I would not pick B.", ":", "failed"),
    ("mmlu", M0, "chat", "Is it 4 (B)? Checking again, B is wrong because sqrt(18)=3sqrt(2).", ":", "failed"),
    ("mmlu", M0, "small", "(B) is a trap.", ":", "failed"),
    ("mmlu", M0, "small", "The degree is 4? That can't be right.", ":", "failed"),
    ("mmlu", M0, "small", M_OUT, " anything but B.", "failed"),
    ("mmlu", M0, "small", M_OUT, " B? No.", "failed"),
    ("mmlu", M0, "small", M_OUT, " B is a distractor.", "failed"),
    (
        "mmlu",
        M0,
        "chat",
        "Option A is 0 which is wrong. Option C is 2 which is too small. So the answer is not C.",
        ":",
        "failed",
    ),
    (
        "aqua",
        A1,
        "chat",
        "The price is $65 (B). Checking: 0.78 * 65 - 20 = 30.7, half of 65 is 32.5. So B is wrong.",
        ":",
        "failed",
    ),
    # 4. numeric options: an expression in the trigger is worth its result
    ("mmlu", M0, "small", M_OUT, " 4 / 2 = 2", "strict:C"),
    ("mmlu", M0, "small", M_OUT, " 4 - 2 = 2.", "strict:C"),
    ("mmlu", M0, "small", M_OUT, " 2 * 2 = 4", "strict:B"),
    ("mmlu", M0, "chat", M_OUT, " [Q(√2,√3):Q] = 2·2 = 4", "strict:B"),
    ("mmlu", M0, "chat", M_OUT, " P(D) = 1/2, so the degree is 4", "strict:B"),
    ("mmlu", M1, "small", "The order of p is 5.", " 120 / 5 = 24", "strict:C"),
    # 7. self-corrections: the final statement decides
    ("mmlu", M0, "small", M_OUT, " D. Wait, no — B.", "strict:B"),
    ("mmlu", M0, "small", M_OUT, " D... actually B", "strict:B"),
    ("mmlu", M0, "small", M_OUT, " D. Hmm, on reflection, B.", "strict:B"),
    (
        "date_understanding",
        D0,
        "small",
        "Yesterday was 04/30/2021 so today is 05/01/2021",
        " E. No wait, that's yesterday's yesterday. D.",
        "strict:D",
    ),
    ("commonsenseqa", C0, "small", "Banks need security. So the answer is (A).", " (E) new york? no. (A)", "strict:A"),
    ("gsm8k", G0, "small", G_OUT, " 16. Let me recompute: 16-3-4 = 9, 9*2 = 18", "strict:18"),
    ("gsm8k", G0, "small", "The answer is 20. No, 18.", ":", "lenient:18"),
    ("gsm8k", G0, "small", "16 - 3 - 4 = 10 eggs, 10 * 2 = 20. Hmm, I miscounted; it's 18.", ":", "lenient:18"),
    ("mmlu", M0, "chat", "The answer is C. Wait, I made an error. It's B.", ":", "lenient:B"),
    # 9. right answers in the trigger
    *[
        ("strategyqa", S0, "chat", "Frost is common in December graduations.", t, "strict:yes")
        for t in (" \\boxed{yes}", " $\\boxed{Yes}$", " \\(\\boxed{\\textbf{Yes}}\\)", " True.")
    ],
    *[
        ("strategyqa", S1, "small", "Hydrogen squared is 1, there are 5 Spice Girls.", t, "strict:no")
        for t in (
            " False.",
            " nope.",
            " Absolutely not.",
            " Of course not.",
            " Not at all.",
            " No information about hydrogen is needed: no.",
        )
    ],
    # 10. last letters
    *[
        ("last_letters", L0, "small", LL, t, "abstained")
        for t in (" not possible.", " cannot be concatenated.", " I don't understand the question.")
    ],
]

CASES = [Case(*r, *([""] if len(r) == 6 else [])) for r in ROWS]
