"""Gold cases: more variants of each fault kind of issue 11 (a number after a cue worth its expression,
echoed triggers and option ranges, wrapped letters, abstentions and what a fallback may not do,
last-letter answers), across tasks. Same conventions as cases_numbers.py."""

from __future__ import annotations

from case import Case

LL0 = "last_letters-0"  # "Whitney Erika Tj Benito" -> yajo

ROWS = [
    # the trigger sentence written in the first pass (no trigger pass): its cue still marks the answer
    ("mmlu", "mmlu-4185", "chat", "A lower price moves us along the demand curve. Therefore, among A through D, the "
     "answer is C.", None, "strict:C", "the echoed trigger keeps its cue; option (B)'s text is not taken instead"),
    ("gsm8k", "gsm8k-0", "chat", "She sells 16 - 3 - 4 = 9 eggs at $2 each. Therefore, the answer (arabic "
     "numerals) is 18.", None, "strict:18"),
    ("strategyqa", "strategyqa-0", "chat", "Frost is common at December ceremonies. Therefore, the answer (Yes or No) "
     "is Yes.", None, "strict:yes"),
    ("last_letters", LL0, "chat", "Whitney → y, Erika → a, Tj → j, Benito → o. Therefore, the answer is yajo.", None,
     "strict:yajo"),
    # invented follow-up questions are cut; a restated question before the answer is not a new one
    ("gsm8k", "gsm8k-1", "chat", "Let me restate the problem.\nQuestion: how many bolts does a robe take?\nSolution: "
     "2 bolts of blue and 2 / 2 = 1 bolt of white. The answer is 3.", None, "strict:3"),
    ("gsm8k", "gsm8k-1", "small", "2 + 1 = 3 bolts. The answer is 3.\n\nQuestion: A shirt takes 4 buttons. How many "
     "buttons do 5 shirts take?\nAnswer: 4 * 5 = 20. The answer is 20.", None, "strict:3"),
    # numbers: expressions after a cue
    ("gsm8k", "gsm8k-2", "chat", "The answer is $200,000 - $130,000 = $70,000.", None, "strict:70000"),
    ("gsm8k", "gsm8k-6", "chat", "Final answer: 20 + 4 × 20 + 2 × 4 × 20 = 260 sheep", None, "strict:260"),
    ("gsm8k", "gsm8k-3", "chat", "So the answer is (3 × 3) × 60 = 540 meters.", None, "strict:540"),
    ("gsm8k", "gsm8k-14", "small", "The answer is 60%.", None, "strict:60"),
    ("gsm8k", "gsm8k-20", "chat", "Water left in the orange drink: 2/3 of 9 = 6 liters.", " \\frac{2}{3} of 9 + 9 = 15",
     "strict:15", "a fraction of a number, then the sum"),
    ("gsm8k", "gsm8k-18", "small", "She eats 3 eggs a day for 28 days.", " 84 / 12 = 7 dozen", "strict:7"),
    ("svamp", "svamp-chal-12", "small", "11 sets of 13 chairs.", " 11 * 13 = 143 chairs.\n143 + 0 = 143", "strict:143"),
    ("gsm8k", "gsm8k-15", "chat", "I think the answer might be $125, or maybe $96.", None, "abstained",
     "a hedge between two numbers"),
    ("gsm8k", "gsm8k-16", "chat", "Each train covers 80 + 150 miles, so the answer is somewhere between 200 and 250 "
     "miles.", None, "abstained", "a range, not an answer"),
    ("gsm8k", "gsm8k-16", "chat", "The difference between 150 and 80 is 70, but the question asks for the total: "
     "80 + 150 = 230.", None, "strict:230", "'total:' is a cue; 'difference between' is no range"),
    # letters: wrappers, ranges, rejections, names
    ("mmlu", "mmlu-4185", "chat", "Lower price, higher quantity demanded.", " \\boxed{\\textbf{(C)}}", "strict:C"),
    ("mmlu", "mmlu-4185", "chat", "Lower price, higher quantity demanded.", " <answer>C</answer>", "strict:C"),
    ("mmlu", "mmlu-4185", "chat", "Lower price, higher quantity demanded.", " `C`", "strict:C"),
    ("mmlu", "mmlu-4185", "chat", "Lower price, higher quantity demanded.", " $\\mathbf{C}$", "strict:C"),
    ("mmlu", "mmlu-4185", "chat", "### Answer\n**C**", None, "strict:C", "an 'Answer' heading is an answer cue"),
    ("mmlu", "mmlu-4185", "small", "The price goes down.", " A through D: C", "strict:C", "an echoed range"),
    ("mmlu", "mmlu-4185", "small", "The price goes down.", " (c)", "strict:C", "a lower-case letter in parentheses"),
    ("mmlu", "mmlu-4185", "chat", "We can rule out (A) and (B): demand does not shift. (D) is wrong too. The "
     "remaining option is (C).", None, "lenient:C", "a list of ruled-out options"),
    ("aqua", "aqua-3", "chat", "Let A and B be the events. P(A ∪ B) ≥ 0.74, so P(neither) ≤ 0.26.", " (B)", "strict:B"),
    ("aqua", "aqua-3", "chat", "Let A and B be the events. P(A ∪ B) ≥ 0.74, so P(neither) ≤ 0.26.", None, "lenient:B",
     "'A and B' name events; the only option written is 0.26"),
    ("mmlu", "mmlu-2983", "chat", "Antimony's symbol is Sb (from stibium); W is tungsten and Fe is iron.\n\n"
     "The answer is (B).", None, "strict:B", "other options named, the cue picks"),
    # abstentions
    ("gsm8k", "gsm8k-25", "chat", "Marie's pizza count depends on the price, which is given.", " There isn't enough "
     "information.", "abstained"),
    ("strategyqa", "strategyqa-13", "chat", "This compares fictional characters.", " The question is ambiguous.",
     "abstained"),
    ("strategyqa", "strategyqa-12", "small", "Scary Movie is a comedy.", " None.", "abstained",
     "'None' answers no yes/no question"),
    ("strategyqa", "strategyqa-12", "chat", "It is a parody, but it still has jump scares.", " I'm not sure, but "
     "probably yes.", "abstained", "a hedge with a lean is not an answer"),
    ("mmlu", "mmlu-4185", "chat", "The answer is probably C, but I'm not certain.", None, "strict:C",
     "an answer stated, then a hedge: it is answered"),
    ("strategyqa", "strategyqa-0", "small", "Frost is cold.", " Yes and no.", "abstained"),
    ("strategyqa", "strategyqa-0", "small", "Frost is cold.", " No, wait, yes.", "strict:yes", "self-correction"),
    ("strategyqa", "strategyqa-2", "chat", "There is no evidence that a pear would sink.", None, "failed",
     "'no evidence' is not the word 'no' as an answer"),
    ("gsm8k", "gsm8k-0", "small", "She has 16 eggs.", " 16 - 3 - 4 = 9. 9 * 2 = 18.", "strict:18",
     "the next sentence goes on from 9: one derivation"),
    ("gsm8k", "gsm8k-0", "chat", "Janet cannot eat more than 16 eggs a day, so she sells 9 and makes 9 * 2 = 18.",
     None, "lenient:18", "'cannot eat' is no abstention"),
    ("gsm8k", "gsm8k-0", "chat", "The answer is: It cannot be determined.", None, "abstained"),
    ("gsm8k", "gsm8k-0", "small", "She sells 9 eggs.", " 18 dollars per day, or 126 dollars per week.", "strict:18",
     "two quantities, not two candidates"),
    ("commonsenseqa", "1afa02df02c908a558b4036e80242fac", "chat", "Banks have revolving doors; so do many department "
     "stores.", " ", "failed", "two options named, none picked"),
    ("mmlu", "mmlu-4185", "small", "The price goes down.", " I think it's C, but A is also possible.", "strict:C"),
    ("mmlu", "mmlu-4185", "small", "The price goes down.", " A and C are both correct.", "abstained"),
    ("strategyqa", "strategyqa-10", "chat", "As an AI, I don't have personal opinions, but the answer is no: Rede Globo "
     "broadcasts in Portuguese.", None, "strict:no", "a disclaimer, then an answer"),
    ("strategyqa", "strategyqa-22", "chat", "It is impossible to say for certain, but the answer is most likely yes.",
     None, "strict:yes"),
    # last letters
    ("last_letters", LL0, "small", "Whitney Erika Tj Benito", " 'yajo'.", "strict:yajo"),
    ("last_letters", LL0, "small", "Whitney Erika Tj Benito", " «yajo»", "strict:yajo"),
    ("last_letters", LL0, "small", "Whitney Erika Tj Benito", " Y A J O", "strict:yajo"),
    ("last_letters", LL0, "small", "Whitney Erika Tj Benito", " YAJO", "strict:yajo"),
    ("last_letters", LL0, "chat", "Whitney, Erika, Tj, Benito.", ' "yajo" comes from "Whitney", "Erika", "Tj" and '
     '"Benito".', "strict:yajo", "names quoted after the answer"),
    ("last_letters", LL0, "small", "Whitney Erika Tj Benito", ' "yajo", not "yajb".', "strict:yajo",
     "a rejected candidate"),
    ("last_letters", LL0, "chat", 'The answer is not "yaji" but "yajo".', None, "lenient:yajo"),
    ("last_letters", LL0, "small", "Whitney Erika Tj Benito", " yajo (y from Whitney, a from Erika, j from Tj, o from "
     "Benito)", "strict:yajo"),
]

CASES = [Case(*r, *([""] if len(r) == 6 else [])) for r in ROWS]
