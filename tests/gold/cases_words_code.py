"""Gold cases, free words (last_letters) and code (humaneval). Same conventions as cases_numbers.py;
for code the expected value is the program text the sandbox would run (compared without outer blank lines).
"""

from __future__ import annotations

from case import Case

LAST_LETTERS = [
    ("last_letters-0", "small", "The last letters are y, a, j, o.", ' "yajo".', "strict:yajo"),
    ("last_letters-0", "small", "The last letters are y, a, j, o.", " yajo", "strict:yajo"),
    (
        "last_letters-0",
        "small",
        "The last letters are y, a, j, o.",
        ' "y a j o".',
        "strict:yajo",
        "letters written with spaces between them",
    ),
    ("last_letters-0", "small", "Whitney, Erika, Tj, Benito.", " y, a, j, o.", "strict:yajo"),
    (
        "last_letters-0",
        "chat",
        "Whitney → y, Erika → a, Tj → j, Benito → o.",
        ' The final answer is "yajo."',
        "strict:yajo",
        "the period inside the quotes",
    ),
    (
        "last_letters-0",
        "small",
        'The last letter of "Whitney" is "y". The last letter of "Erika" is "a". The last '
        'letter of "Tj" is "j". The last letter of "Benito" is "o". Concatenating them is "yajo".',
        None,
        "strict:yajo",
    ),
    ("last_letters-0", "small", "Whitney -> y, Erika -> a, Tj -> j, Benito -> o: yajo", None, "lenient:yajo"),
    (
        "last_letters-0",
        "small",
        'The last letters of "Whitney", "Erika", "Tj", "Benito" are "y", "a", "j", "o", giving "yajo".',
        ' "Whitney Erika Tj Benito".',
        "lenient:yajo",
        "the trigger only echoes the names; the last quoted answer in the first pass counts",
    ),
    (
        "last_letters-0",
        "chat",
        "```python\nnames = ['Whitney', 'Erika', 'Tj', 'Benito']\nprint(''.join(n[-1] for n "
        "in names))\n```\nOutput: `yajo`",
        None,
        "strict:yajo",
    ),
    (
        "last_letters-0",
        "small",
        'Take the last letters of each words in "Whitney Erika Tj Benito" and concatenate them.',
        " Whitney Erika Tj Benito",
        "failed",
        "only the question and its names echoed",
    ),
    (
        "last_letters-0",
        "chat",
        'It could be "yajo" or "yaio", depending on how "Tj" is read.',
        None,
        "abstained",
        "two candidates offered",
    ),
    ("last_letters-1", "small", 'The last letters are y, a, j, c. So the answer is "yajc".', ' "yajc"', "strict:yajc"),
    (
        "last_letters-1",
        "small",
        "The last letters are y, a, j, c.",
        ' "Lucky Mireya Jj Kc"',
        "lenient:yajc",
        "the echoed names are not the answer; the letters listed apart are",
    ),
    (
        "last_letters-1",
        "small",
        "Lucky ends in y, Mireya in a, Jj in j, Kc in k.",
        ' "yajk". Wait, actually, Kc ends in c: "yajc".',
        "strict:yajc",
        "self-correction",
    ),
    ("last_letters-2", "small", "Caleb -> b, Chase -> e, Eleazar -> r, Chanel -> l", " berl.", "strict:berl"),
    (
        "last_letters-2",
        "small",
        "Caleb -> b, Chase -> e, Eleazar -> r, Chanel -> l",
        ' "berl"\n\nQuestion: Take the '
        'last letters of each words in "Silvia Carolina Stan Chuck" and concatenate them.\nAnswer: "aank"',
        "strict:berl",
        "invented next question cut",
    ),
    ("last_letters-2", "small", "b e r l", " b-e-r-l", "strict:berl"),
    (
        "last_letters-3",
        "chat",
        "**Step 1:** Silvia → *a*\n**Step 2:** Carolina → *a*\n**Step 3:** Stan → *n*\n"
        "**Step 4:** Chuck → *k*\n\n**Answer:** `aank`",
        None,
        "strict:aank",
        "markdown",
    ),
    (
        "last_letters-3",
        "chat",
        "**Step 1:** Silvia → *a*\n**Step 2:** Carolina → *a*\n**Step 3:** Stan → *n*\n"
        "**Step 4:** Chuck → *k*\n\n**Answer:** `aank`",
        " **aank**",
        "strict:aank",
    ),
    (
        "last_letters-4",
        "small",
        "Breanna ends with a, Trey ends with y, Omar ends with r, Patrice ends with e.",
        " ayre",
        "strict:ayre",
    ),
    (
        "last_letters-4",
        "small",
        "The last letter of Breanna is a. The last letter of Trey is y. The last letter of "
        "Omar is r. The last letter of",
        ' "ayr"',
        "strict:ayr",
        "truncated; the trigger's wrong answer as written",
    ),
    (
        "last_letters-5",
        "chat",
        "Lilian → n, Ian → n, Bryce → e, Aracely → y. Concatenated: **nney**",
        None,
        "strict:nney",
    ),
    ("last_letters-5", "small", "n n e y", " nney.", "strict:nney"),
    ("last_letters-6", "small", "Walter Mikayla Larry Ryan", " r, a, y, n → rayn", "strict:rayn"),
    (
        "last_letters-7",
        "small",
        "Angelina, Layla, Jenny, Zane.",
        " The last letters are a, a, y, e, so the answer is aaye.",
        "strict:aaye",
    ),
    (
        "last_letters-8",
        "small",
        'Lizzy ends with "y", Juany ends with "y", Aisha ends with "a", Brenda ends with '
        '"a". Putting them together: "yyaa".',
        None,
        "lenient:yyaa",
    ),
    ("last_letters-8", "small", "y y a a", ' "yyaa".', "strict:yyaa"),
    ("last_letters-9", "small", "Elise Lupe Renee Noemi: e e e i", " eeei", "strict:eeei"),
    ("last_letters-9", "small", "Elise, Lupe, Renee", " eei", "strict:eei", "wrong, read as written"),
    (
        "last_letters-10",
        "chat",
        "Jesse → e, Roderick → k, Travis → s, Rita → a.",
        " $\\boxed{\\text{eksa}}$",
        "strict:eksa",
        "LaTeX box",
    ),
    (
        "last_letters-10",
        "chat",
        "Jesse → e, Roderick → k, Travis → s, Rita → a. So the result is $\\text{eksa}$.",
        None,
        "strict:eksa",
    ),
    ("last_letters-11", "small", "Cinthia a, Lloyd d, Jacqueline e, Jc c.", " adec.", "strict:adec"),
    ("last_letters-11", "chat", "I'm sorry, but I can't help with that request.", None, "abstained"),
    ("last_letters-11", "small", "Cinthia Lloyd Jacqueline Jc", " I cannot determine the last letters.", "abstained"),
    ("last_letters-19", "small", "Annie e, Toño o, Sharon n, Delores s", " eons", "strict:eons", "a name with ñ"),
    (
        "last_letters-19",
        "chat",
        "Annie → e, Toño → o, Sharon → n, Delores → s.\n\nAnswer: **eons**",
        None,
        "strict:eons",
    ),
    ("last_letters-115", "small", "Jesús, Vidal, Maxine, Gloria.", ' "slea"', "strict:slea"),
    (
        "last_letters-115",
        "small",
        "The last letter of Jesús is ú.",
        " úlea",
        "strict:úlea",
        "non-ASCII letters read as letters",
    ),
    ("last_letters-135", "small", "Bailey y, Lourdes s, Brianna a, Martín n", " ysan.", "strict:ysan"),
    ("last_letters-135", "small", "Bailey Lourdes Brianna Martín", " y s a n", "strict:ysan"),
    ("last_letters-158", "small", "Myriam m, José é, Cecy y, Faisal l", " méyl", "strict:méyl", "an accented answer"),
    (
        "last_letters-158",
        "chat",
        'Myriam → m, José → é, Cecy → y, Faisal → l. The answer is "méyl".',
        None,
        "strict:méyl",
    ),
    (
        "last_letters-158",
        "small",
        "Myriam m, José e\u0301, Cecy y, Faisal l",
        " me\u0301yl",
        "strict:méyl",
        "a decomposed accent (e + combining acute) is the same letter",
    ),
    ("last_letters-180", "small", "Lucio Víctor Lester Allie", ' "orre"', "strict:orre"),
    ("last_letters-205", "small", "Andrés Miles Ronaldo Melinda", " ssoa", "strict:ssoa"),
    ("last_letters-211", "small", "Paulo Tatyana Bernice Raúl", " oael", "strict:oael"),
    (
        "last_letters-350",
        "chat",
        "Paris → s, Jimmie → e, Andrew → w, Ramón → n.",
        ' The answer is "sewn".',
        "strict:sewn",
    ),
    ("last_letters-379", "small", "Ángel Carlton Sameer Martinez", " lnrz", "strict:lnrz"),
    ("last_letters-438", "small", "María Fredy Bridgette Kenya", " ayea", "strict:ayea"),
    ("last_letters-448", "small", "Georgina Joshua Lindsey César", ' "aayr"', "strict:aayr"),
]

TRUNCATE = "def truncate_number(number: float) -> float:\n    return number % 1.0\n"
CLOSE = (
    "def has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
    "    for i, a in enumerate(numbers):\n        for b in numbers[i + 1:]:\n"
    "            if abs(a - b) < threshold:\n                return True\n    return False\n"
)

HUMANEVAL = [
    (
        "HumanEval/2",
        "chat",
        f"Here is the implementation:\n```python\n{TRUNCATE}```\nThis returns the fractional part.",
        None,
        f"strict:{TRUNCATE}",
    ),
    ("HumanEval/2", "small", "    return number % 1.0", None, "lenient:    return number % 1.0", "unfenced body"),
    ("HumanEval/2", "chat", "I'm sorry, but I can't write code for this.", None, "abstained", "refusal"),
    (
        "HumanEval/2",
        "chat",
        "First a helper:\n```python\ndef frac(x):\n    return x - int(x)\n```\nThen the function:\n"
        f"```python\n{TRUNCATE}```",
        None,
        f"strict:{TRUNCATE}",
        "the block that defines the entry point",
    ),
    (
        "HumanEval/2",
        "small",
        "```python\ndef truncate_number(number: float) -> float:\n    return number - int(number)",
        None,
        "strict:def truncate_number(number: float) -> float:\n    return number - int(number)",
        "a fence cut off by the token limit",
    ),
    ("HumanEval/2", "chat", f"```py\n{TRUNCATE}```", None, f"strict:{TRUNCATE}"),
    ("HumanEval/2", "chat", "The function should return the decimal part of the number.", None, "failed"),
    (
        "HumanEval/2",
        "small",
        "def truncate_number(number):\n    return number % 1",
        None,
        "lenient:def truncate_number(number):\n    return number % 1",
        "unfenced function",
    ),
    ("HumanEval/2", "small", "I don't know how to solve this.", None, "abstained"),
    ("HumanEval/0", "chat", f"```\n{CLOSE}```", None, f"strict:{CLOSE}", "a fence without a language tag"),
    (
        "HumanEval/0",
        "chat",
        "```python\ndef has_close_elements(numbers, threshold):\n    # cannot be determined for "
        "an empty list, so return False\n    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in "
        "numbers[i + 1:])\n```",
        None,
        "strict:def has_close_elements(numbers, threshold):\n    # cannot be determined "
        "for an empty list, so return False\n    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b "
        "in numbers[i + 1:])",
        "'cannot be determined' in a code comment is not an abstention",
    ),
    (
        "HumanEval/0",
        "chat",
        f"As an AI language model, I cannot run code, but here is a solution:\n```python\n{CLOSE}```",
        None,
        f"strict:{CLOSE}",
        "a disclaimer with code is an answer",
    ),
    (
        "HumanEval/23",
        "chat",
        "```python\ndef helper():\n    pass\n```",
        None,
        "strict:def helper():\n    pass",
        "no block defines strlen: the first block",
    ),
    (
        "HumanEval/23",
        "small",
        "    return len(string)\n\n\ndef strlen2(string):\n    return len(string)",
        None,
        "lenient:    return len(string)\n\n\ndef strlen2(string):\n    return len(string)",
    ),
    (
        "HumanEval/7",
        "chat",
        "Sure! Use a list comprehension:\n\n```python\nfrom typing import List\n\n\ndef "
        "filter_by_substring(strings: List[str], substring: str) -> List[str]:\n    return [s for s in strings if "
        "substring in s]\n```",
        None,
        "strict:from typing import List\n\n\ndef filter_by_substring(strings: List[str], "
        "substring: str) -> List[str]:\n    return [s for s in strings if substring in s]",
    ),
]

CASES = [
    *(Case("last_letters", *r, *([""] if len(r) == 5 else [])) for r in LAST_LETTERS),
    *(Case("humaneval", *r, *([""] if len(r) == 5 else [])) for r in HUMANEVAL),
]
